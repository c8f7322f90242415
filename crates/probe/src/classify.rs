//! What a server's first bytes say about it. Pure functions over bytes, so that they can
//! be tested and fuzzed without a network.

/// A service recognised from what it sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identified {
    /// `smtp`, `http`, `ssh`, …
    pub service: &'static str,
    /// What it said, shortened to one line: a banner, a status line.
    pub detail: String,
}

/// Recognise a server from the first bytes it sent: unprompted (a banner: SMTP, FTP, SSH,
/// POP3, IMAP) or in answer to an HTTP request.
pub fn classify(bytes: &[u8]) -> Option<Identified> {
    if bytes.is_empty() {
        return None;
    }
    // A TLS alert record (content type 21, version 3.x): a TLS server that was sent
    // plaintext.
    if bytes.len() >= 2 && bytes[0] == 0x15 && bytes[1] == 0x03 {
        return Some(Identified {
            service: "tls",
            detail: "answered plaintext with a TLS alert".to_owned(),
        });
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]);
    let first = first_line(&text);
    let service = if first.starts_with("HTTP/") {
        let server = text
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("server")
                    .then(|| value.trim())
            })
            .filter(|s| !s.is_empty());
        return Some(Identified {
            service: "http",
            detail: match server {
                Some(server) => format!("{first} (server: {})", printable(server)),
                None => first,
            },
        });
    } else if first.starts_with("220") {
        if first.to_ascii_lowercase().contains("ftp") {
            "ftp"
        } else {
            "smtp"
        }
    } else if first.starts_with("SSH-") {
        "ssh"
    } else if first.starts_with("+OK") {
        "pop3"
    } else if first.starts_with("* OK") {
        "imap"
    } else {
        return None;
    };
    Some(Identified {
        service,
        detail: first,
    })
}

fn first_line(text: &str) -> String {
    printable(text.lines().next().unwrap_or("").trim())
}

/// At most 120 characters, control characters replaced: safe to print on a terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .take(120)
        .map(|c| if c.is_control() { '·' } else { c })
        .collect()
}

/// The well-known ports switchboard speaks of, with their usual services (IANA's service
/// names): `switchboard probe` labels what it finds with them, and the page's building names
/// its painted-over doors with them. The one copy of this table.
pub const WELL_KNOWN: &[(u16, &str)] = &[
    (20, "ftp-data"),
    (21, "ftp"),
    (22, "ssh"),
    (23, "telnet"),
    (25, "smtp"),
    (53, "domain"),
    (80, "http"),
    (110, "pop3"),
    (143, "imap"),
    (443, "https"),
    (465, "submissions"),
    (587, "submission"),
    (993, "imaps"),
    (995, "pop3s"),
    (3306, "mysql"),
    (5432, "postgresql"),
    (6379, "redis"),
    (8080, "http-alt"),
];

/// The usual service of a well-known port ([`WELL_KNOWN`]).
pub fn well_known(port: u16) -> Option<&'static str> {
    WELL_KNOWN
        .iter()
        .find(|(known, _)| *known == port)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(bytes: &[u8]) -> Option<&'static str> {
        classify(bytes).map(|i| i.service)
    }

    #[test]
    fn banners_name_their_service() {
        assert_eq!(service(b"220 mx.test ESMTP switchboard\r\n"), Some("smtp"));
        assert_eq!(service(b"220 (vsFTPd 3.0.3)\r\n"), Some("ftp"));
        assert_eq!(service(b"220 ProFTPD Server ready.\r\n"), Some("ftp"));
        assert_eq!(service(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), Some("ssh"));
        assert_eq!(service(b"+OK POP3 ready\r\n"), Some("pop3"));
        assert_eq!(
            service(b"* OK [CAPABILITY IMAP4rev1] ready\r\n"),
            Some("imap")
        );
        assert_eq!(
            classify(b"220 mx.test ESMTP switchboard\r\n")
                .unwrap()
                .detail,
            "220 mx.test ESMTP switchboard"
        );
    }

    #[test]
    fn http_answers_show_status_and_server() {
        let found =
            classify(b"HTTP/1.1 200 OK\r\nserver: nginx/1.22.1\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
        assert_eq!(found.service, "http");
        assert_eq!(found.detail, "HTTP/1.1 200 OK (server: nginx/1.22.1)");
        assert_eq!(
            classify(b"HTTP/1.0 404 Not Found\r\n\r\n").unwrap().detail,
            "HTTP/1.0 404 Not Found"
        );
    }

    #[test]
    fn tls_alerts_and_noise() {
        assert_eq!(
            service(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]),
            Some("tls")
        );
        assert_eq!(service(b""), None);
        assert_eq!(service(b"\x00\x01\x02garbage"), None);
        assert_eq!(
            printable("a\x1b[31mb"),
            "a·[31mb",
            "no terminal escapes get through"
        );
    }
}
