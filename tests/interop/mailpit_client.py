#!/usr/bin/env python3
"""Interop: the Mailpit API client from PyPI (mailpit-api-client) against switchboard.

A test suite written for Mailpit uses this client to read back the mail an app sent. Here
smtplib sends a message with an attachment to a switchboard started on ephemeral ports,
and the client lists it, gets it (its Read flag included), reads its headers and its
attachment, and deletes every message.

Usage: mailpit_client.py path/to/switchboard
Run by .ci/run, which installs mailpit-api-client with pip.
"""

import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from mailpit.client.api import API

from harness import check, run


def scenario(sb):
    message = EmailMessage()
    message["From"] = "App <app@example.test>"
    message["To"] = "Alice <alice@example.test>"
    message["Subject"] = "Your invoice"
    message["Delivered-To"] = "alice@example.test"
    message["Date"] = formatdate()
    message["Message-ID"] = make_msgid(domain="example.test")
    message.set_content("Please find your invoice attached.")
    message.add_attachment(b"total,42\n", maintype="text", subtype="csv", filename="invoice.csv")
    with smtplib.SMTP("127.0.0.1", sb.port("smtp"), timeout=15) as smtp:
        smtp.send_message(message)

    api = API(f"http://{sb.addrs['http']}", timeout=15)
    messages = api.get_messages()
    check("list: one message", messages.total == 1 and len(messages.messages) == 1, messages)
    summary = messages.messages[0]
    check("list: the subject", summary.subject == "Your invoice", summary)
    check("list: unread", summary.read is False, summary)

    full = api.get_message(summary.id)
    check("get: the subject and sender", full.subject == "Your invoice"
          and full.from_.address == "app@example.test", full)
    check("get: read once fetched", full.read is True, full)
    check("get: the text", "invoice attached" in (full.text or ""), full.text)
    check("get: one attachment", len(full.attachments) == 1
          and full.attachments[0].file_name == "invoice.csv", full.attachments)

    headers = api.get_message_headers(summary.id)
    check("headers: Message-Id and Delivered-To", bool(headers.message_id)
          and headers.delivered_to == ["alice@example.test"], headers)

    attachment = api.get_message_attachment(summary.id, full.attachments[0].part_id)
    check("attachment: its content", attachment == "total,42\n", repr(attachment))

    # An empty list means "every message" for this client, as for Mailpit.
    api.delete_messages([])
    check("delete: the mailbox is empty", api.get_messages().total == 0)


if __name__ == "__main__":
    run("Mailpit client", scenario)
