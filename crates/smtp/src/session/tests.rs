use super::*;
use switchboard_mail::Chaos;

fn session_with(settings: SmtpSettings, tls_offered: bool) -> Session {
    Session::new(
        Arc::new(settings),
        Arc::from("mx.test"),
        Chaos::default(),
        tls_offered,
        false,
    )
}

fn session() -> Session {
    session_with(SmtpSettings::default(), true)
}

/// Send each line; return every reply line, and what the session wanted after the last.
fn chat(session: &mut Session, lines: &[&str]) -> (Vec<String>, Next) {
    let mut out = Vec::new();
    let mut next = Next::Continue;
    for line in lines {
        next = session.handle(format!("{line}\r\n").as_bytes(), &mut out);
    }
    let text = String::from_utf8(out).unwrap();
    (text.lines().map(str::to_owned).collect(), next)
}

/// The last reply line of a chat.
fn last(session: &mut Session, lines: &[&str]) -> String {
    chat(session, lines).0.pop().unwrap()
}

#[test]
fn greeting_names_the_host() {
    let mut out = Vec::new();
    session().greeting(&mut out);
    assert_eq!(out, b"220 mx.test ESMTP switchboard\r\n");
}

#[test]
fn ehlo_advertises_the_extensions() {
    let (lines, _) = chat(&mut session(), &["EHLO client.test"]);
    assert_eq!(
        lines,
        [
            "250-mx.test greets client.test",
            "250-PIPELINING",
            "250-SIZE 10485760",
            "250-8BITMIME",
            "250-SMTPUTF8",
            "250-ENHANCEDSTATUSCODES",
            "250-STARTTLS",
            "250-AUTH PLAIN LOGIN",
            "250 HELP",
        ]
    );
    let plain = SmtpSettings {
        auth: AuthPolicy::Off,
        ..SmtpSettings::default()
    };
    let (lines, _) = chat(&mut session_with(plain, false), &["EHLO client.test"]);
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("STARTTLS") || l.contains("AUTH")),
        "{lines:?}"
    );
    assert_eq!(
        last(&mut session(), &["HELO client.test"]),
        "250 mx.test greets client.test"
    );
}

#[test]
fn a_whole_transaction() {
    let mut s = session();
    let (lines, next) = chat(
        &mut s,
        &[
            "EHLO c",
            "MAIL FROM:<a@example.test> SIZE=100 BODY=8BITMIME",
            "RCPT TO:<b@example.test>",
            "RCPT TO:<c@example.test>",
            "DATA",
        ],
    );
    assert_eq!(
        lines[lines.len() - 4..],
        [
            "250 2.1.0 Sender <a@example.test> OK",
            "250 2.1.5 Recipient <b@example.test> OK",
            "250 2.1.5 Recipient <c@example.test> OK",
            "354 End data with <CR><LF>.<CR><LF>",
        ]
    );
    assert_eq!(next, Next::Data);
    let envelope = s
        .finish_transaction("127.0.0.1:9".parse().unwrap())
        .unwrap();
    assert_eq!(envelope.mail_from, "a@example.test");
    assert_eq!(envelope.rcpt_to, ["b@example.test", "c@example.test"]);
    assert_eq!(envelope.helo, "c");
    assert!(
        s.finish_transaction("127.0.0.1:9".parse().unwrap())
            .is_none(),
        "the transaction ended"
    );
}

#[test]
fn the_null_sender_and_postmaster_are_valid() {
    let mut s = session();
    assert_eq!(
        last(&mut s, &["EHLO c", "MAIL FROM:<>"]),
        "250 2.1.0 Sender <> OK"
    );
    assert_eq!(
        last(&mut s, &["RCPT TO:<Postmaster>"]),
        "250 2.1.5 Recipient <postmaster> OK"
    );
    assert_eq!(
        last(&mut s, &["RCPT TO:<>"]),
        "501 5.1.3 Bad recipient address syntax"
    );
}

#[test]
fn commands_out_of_order_get_503_or_554() {
    let mut s = session();
    assert_eq!(
        last(&mut s, &["MAIL FROM:<a@b.test>"]),
        "503 5.5.1 Send EHLO or HELO first"
    );
    assert_eq!(
        last(&mut s, &["EHLO c", "RCPT TO:<b@b.test>"]),
        "503 5.5.1 Need MAIL before RCPT"
    );
    assert_eq!(
        last(&mut s, &["DATA"]),
        "503 5.5.1 Need MAIL and RCPT before DATA"
    );
    assert_eq!(
        last(&mut s, &["MAIL FROM:<a@b.test>", "DATA"]),
        "554 5.5.1 No valid recipients"
    );
    assert_eq!(
        last(&mut s, &["MAIL FROM:<a@b.test>"]),
        "503 5.5.1 Sender already given; send RSET to start over"
    );
    assert_eq!(
        last(&mut s, &["RSET", "MAIL FROM:<a@b.test>"]),
        "250 2.1.0 Sender <a@b.test> OK"
    );
}

#[test]
fn unknown_commands_and_bad_syntax() {
    let mut s = session();
    assert_eq!(last(&mut s, &["FROB"]), "500 5.5.1 Command not recognized");
    assert_eq!(last(&mut s, &["EHLO"]), "501 5.5.2 Syntax: EHLO domain");
    assert_eq!(
        last(&mut s, &["EHLO c", "MAIL FROM:<no spaces allowed>"]),
        "501 5.1.7 Bad sender address syntax"
    );
    assert_eq!(
        last(&mut s, &["MAIL FROM:<a@b.test> SIZE=lots"]),
        "501 5.5.4 Invalid value for SIZE"
    );
    assert_eq!(
        last(&mut s, &["MAIL FROM:<a@b.test> FROB=1"]),
        "555 5.5.4 Unsupported parameter FROB=1"
    );
    assert_eq!(
        last(&mut s, &["MAIL FROM:<a@b.test> BODY=BINARYMIME"]),
        "555 5.5.4 BODY=BINARYMIME is not supported"
    );
    assert_eq!(
        last(&mut s, &["DATA now"]),
        "501 5.5.4 DATA takes no parameters"
    );
    assert_eq!(
        last(&mut s, &["RSET please"]),
        "501 5.5.4 RSET takes no parameters"
    );
    assert_eq!(
        last(&mut s, &["EXPN staff"]),
        "502 5.5.1 Command not implemented"
    );
}

#[test]
fn small_commands() {
    let mut s = session();
    assert_eq!(last(&mut s, &["NOOP"]), "250 2.0.0 OK");
    assert_eq!(
        last(&mut s, &["VRFY bob"]),
        "252 2.5.0 Cannot VRFY user, but will accept mail for it"
    );
    assert!(last(&mut s, &["HELP"]).starts_with("214 2.0.0 Commands:"));
    let (lines, next) = chat(&mut s, &["QUIT"]);
    assert_eq!(lines, ["221 2.0.0 mx.test closing connection"]);
    assert_eq!(next, Next::Close);
}

#[test]
fn limits_on_size_recipients_and_line_length() {
    let settings = SmtpSettings {
        max_message_bytes: 1000,
        max_recipients: 2,
        ..SmtpSettings::default()
    };
    let mut s = session_with(settings, false);
    assert_eq!(
        last(&mut s, &["EHLO c", "MAIL FROM:<a@b.test> SIZE=1001"]),
        "552 5.3.4 Message size exceeds the maximum of 1000 bytes"
    );
    assert_eq!(
        last(
            &mut s,
            &[
                "MAIL FROM:<a@b.test> SIZE=1000",
                "RCPT TO:<1@b.test>",
                "RCPT TO:<2@b.test>",
                "RCPT TO:<3@b.test>"
            ]
        ),
        "452 4.5.3 Too many recipients"
    );
    let long = format!("NOOP {}", "x".repeat(600));
    assert_eq!(last(&mut s, &[&long]), "500 5.5.2 Line too long");
    let mut out = Vec::new();
    assert_eq!(s.line_too_long(&mut out), Next::Continue);
    assert_eq!(out, b"500 5.5.2 Line too long\r\n");
}

#[test]
fn too_many_errors_in_a_row_end_the_session() {
    let settings = SmtpSettings {
        max_errors: 3,
        ..SmtpSettings::default()
    };
    let mut s = session_with(settings, false);
    let (lines, next) = chat(&mut s, &["FROB", "FROB", "NOOP", "FROB", "FROB"]);
    assert_eq!(
        next,
        Next::Continue,
        "a good command resets the count: {lines:?}"
    );
    let (lines, next) = chat(&mut s, &["FROB"]);
    assert_eq!(
        lines,
        [
            "500 5.5.1 Command not recognized",
            "421 4.7.0 Too many errors, closing connection"
        ]
    );
    assert_eq!(next, Next::Close);
}

#[test]
fn utf8_addresses_need_smtputf8() {
    let mut s = session();
    assert_eq!(
        last(&mut s, &["EHLO c", "MAIL FROM:<jösé@exämple.test>"]),
        "553 5.6.7 A non-ASCII address needs the SMTPUTF8 parameter"
    );
    assert_eq!(
        last(&mut s, &["MAIL FROM:<a@b.test>", "RCPT TO:<ünï@b.test>"]),
        "553 5.6.7 A non-ASCII address needs SMTPUTF8 on MAIL"
    );
    assert_eq!(
        last(
            &mut s,
            &[
                "RSET",
                "MAIL FROM:<jösé@exämple.test> SMTPUTF8",
                "RCPT TO:<ünï@b.test>"
            ]
        ),
        "250 2.1.5 Recipient <ünï@b.test> OK"
    );
}

#[test]
fn starttls_and_what_it_resets() {
    let mut s = session();
    let (lines, next) = chat(&mut s, &["EHLO c", "STARTTLS"]);
    assert_eq!(lines.last().unwrap(), "220 2.0.0 Ready to start TLS");
    assert_eq!(next, Next::StartTls);
    s.tls_started();
    assert!(s.is_secure());
    assert_eq!(
        last(&mut s, &["MAIL FROM:<a@b.test>"]),
        "503 5.5.1 Send EHLO or HELO first"
    );
    let (lines, _) = chat(&mut s, &["EHLO c"]);
    assert!(!lines.iter().any(|l| l.contains("STARTTLS")), "{lines:?}");
    assert_eq!(last(&mut s, &["STARTTLS"]), "503 5.5.1 Already using TLS");

    let mut no_cert = session_with(SmtpSettings::default(), false);
    assert_eq!(
        last(&mut no_cert, &["EHLO c", "STARTTLS"]),
        "454 4.7.0 TLS not available"
    );
    assert_eq!(
        last(&mut session(), &["EHLO c", "STARTTLS now"]),
        "501 5.5.4 STARTTLS takes no parameters"
    );
}

fn b64(text: &str) -> String {
    BASE64.encode(text)
}

#[test]
fn auth_plain_with_and_without_an_initial_response() {
    let mut s = session();
    let credentials = b64("\0alice\0secret");
    assert_eq!(
        last(&mut s, &["EHLO c", &format!("AUTH PLAIN {credentials}")]),
        "235 2.7.0 Authentication successful"
    );
    assert_eq!(
        last(&mut s, &["AUTH PLAIN"]),
        "503 5.5.1 Already authenticated"
    );
    let envelope = {
        chat(&mut s, &["MAIL FROM:<a@b.test>", "RCPT TO:<c@b.test>"]);
        s.finish_transaction("127.0.0.1:1".parse().unwrap())
            .unwrap()
    };
    assert_eq!(envelope.auth_user.as_deref(), Some("alice"));

    let mut s = session();
    assert_eq!(last(&mut s, &["EHLO c", "AUTH PLAIN"]), "334 ");
    assert_eq!(
        last(&mut s, &[&b64("admin\0bob\0pw")]),
        "235 2.7.0 Authentication successful"
    );
}

#[test]
fn auth_login_asks_for_user_then_password() {
    let mut s = session();
    assert_eq!(last(&mut s, &["EHLO c", "AUTH LOGIN"]), "334 VXNlcm5hbWU6");
    assert_eq!(last(&mut s, &[&b64("carol")]), "334 UGFzc3dvcmQ6");
    assert_eq!(
        last(&mut s, &[&b64("hunter2")]),
        "235 2.7.0 Authentication successful"
    );
    chat(&mut s, &["MAIL FROM:<a@b.test>", "RCPT TO:<c@b.test>"]);
    let envelope = s
        .finish_transaction("127.0.0.1:1".parse().unwrap())
        .unwrap();
    assert_eq!(envelope.auth_user.as_deref(), Some("carol"));
    assert!(
        !format!("{s:?}").contains("hunter2"),
        "the password is not kept"
    );
}

#[test]
fn auth_errors() {
    let mut s = session();
    assert_eq!(
        last(&mut s, &["AUTH PLAIN"]),
        "503 5.5.1 Send EHLO before AUTH"
    );
    assert_eq!(
        last(&mut s, &["EHLO c", "AUTH CRAM-MD5"]),
        "504 5.5.4 Unrecognized authentication type; use PLAIN or LOGIN"
    );
    assert_eq!(
        last(&mut s, &["AUTH LOGIN", "*"]),
        "501 5.0.0 Authentication cancelled"
    );
    assert_eq!(
        last(&mut s, &["AUTH PLAIN", "not base64!"]),
        "501 5.5.2 Invalid base64 in AUTH response"
    );
    assert_eq!(
        last(&mut s, &[&format!("AUTH PLAIN {}", b64("no separators"))]),
        "501 5.5.2 Malformed PLAIN credentials"
    );
    assert_eq!(
        last(&mut s, &["MAIL FROM:<a@b.test>", "AUTH PLAIN"]),
        "503 5.5.1 AUTH is not allowed during a mail transaction"
    );

    let required = SmtpSettings {
        auth: AuthPolicy::Required,
        ..SmtpSettings::default()
    };
    let mut s = session_with(required, false);
    assert_eq!(
        last(&mut s, &["EHLO c", "MAIL FROM:<a@b.test>"]),
        "530 5.7.0 Authentication required"
    );
    assert_eq!(
        last(
            &mut s,
            &[
                &format!("AUTH PLAIN {}", b64("\0u\0p")),
                "MAIL FROM:<a@b.test>"
            ]
        ),
        "250 2.1.0 Sender <a@b.test> OK"
    );

    let off = SmtpSettings {
        auth: AuthPolicy::Off,
        ..SmtpSettings::default()
    };
    assert_eq!(
        last(&mut session_with(off, false), &["EHLO c", "AUTH PLAIN"]),
        "502 5.5.1 Command not implemented"
    );
}

#[test]
fn a_long_auth_line_is_allowed() {
    let mut s = session();
    let long_user = "u".repeat(1000);
    let credentials = b64(&format!("\0{long_user}\0pw"));
    assert!(credentials.len() > MAX_COMMAND_LINE);
    assert_eq!(
        last(&mut s, &["EHLO c", &format!("AUTH PLAIN {credentials}")]),
        "235 2.7.0 Authentication successful"
    );
}

#[test]
fn chaos_triggers_reject_with_their_code() {
    use switchboard_mail::{Trigger, Triggers};
    let chaos = Chaos::default();
    let mut s = Session::new(
        Arc::new(SmtpSettings::default()),
        Arc::from("mx.test"),
        chaos.clone(),
        false,
        false,
    );
    let always = |code| Trigger {
        error_code: code,
        probability: 100,
        first: 0,
    };
    chaos
        .set(Triggers {
            sender: always(451),
            ..Triggers::default()
        })
        .unwrap();
    assert_eq!(
        last(&mut s, &["EHLO c", "MAIL FROM:<a@b.test>"]),
        "451 4.0.0 Sender rejected by a chaos trigger (a switchboard test fault)"
    );
    chaos
        .set(Triggers {
            recipient: always(550),
            authentication: always(535),
            ..Triggers::default()
        })
        .unwrap();
    assert!(last(&mut s, &["MAIL FROM:<a@b.test>"]).starts_with("250"));
    assert!(last(&mut s, &["RCPT TO:<c@b.test>"]).starts_with("550 5.0.0 Recipient rejected"));
    assert!(
        last(&mut s, &["RSET", &format!("AUTH PLAIN {}", b64("\0u\0p"))])
            .starts_with("535 5.0.0 Authentication rejected")
    );
    chaos.set(Triggers::default()).unwrap();
    assert!(last(&mut s, &["MAIL FROM:<a@b.test>"]).starts_with("250"));
}

#[test]
fn a_command_with_a_control_character_is_refused_not_echoed() {
    let mut session = session();
    assert_eq!(
        last(&mut session, &["EHLO client\x7f.test"]),
        "501 5.5.2 Syntax error: control character U+007F in the command"
    );
    assert_eq!(
        last(&mut session, &["EHLO c\rlient"]),
        "501 5.5.2 Syntax error: control character U+000D in the command"
    );
    assert_eq!(
        last(&mut session, &["MAIL FROM:<a\x1b[2J@x.test>"]),
        "501 5.5.2 Syntax error: control character U+001B in the command"
    );
    // A C1 control written as UTF-8 (C2 9B is CSI, which starts terminal escapes).
    let mut out = Vec::new();
    session.handle(b"MAIL FROM:<a@b.test> SMTPUTF8 X\xc2\x9b2J\r\n", &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "501 5.5.2 Syntax error: control character U+009B in the command\r\n"
    );
    // Tabs are not spaces in SMTP either.
    assert!(last(&mut session, &["EHLO\tc"]).starts_with("501 5.5.2"));
    // A bare LF still ends a command.
    let mut out = Vec::new();
    session.handle(b"EHLO client.test\n", &mut out);
    assert!(
        String::from_utf8(out)
            .unwrap()
            .starts_with("250-mx.test greets client.test\r\n")
    );
}
