#!/usr/bin/env python
"""django-helpdesk's side of benches/email_import.rs (issue #5): import an IMAP mailbox with its own command.

1. Migrates a fresh SQLite database under --work (not timed).
2. Creates one Queue reading the IMAP mailbox: email_box_type 'imap', --host/--port, no SSL (django-helpdesk still
   tries STARTTLS first and uses it when the server offers it), --user/--password, folder INBOX,
   allow_email_submission on, checked at every run (interval 0), its log at warning level to stderr.
3. Times `python manage.py get_email` (it processes every queue) from start until it returns: one run, as cron
   would start it, including the interpreter's and Django's start-up (measured alone beforehand too: the same
   command before the Queue exists).
4. Counts what it made (and the CPU time get_email used): tickets, follow-ups (one per imported mail, the first one of a ticket included),
   attachments; and the log lines that tell about mail it failed on or skipped.

The last line of standard output is `RESULT {json}`. Run with the venv's python, from this folder:
  python run_import.py --work DIR --port 10143 --user U --password P [--timeout 600]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="folder for the database, attachments and logs")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--folder", default="INBOX")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds before get_email is killed")
    args = ap.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ["HELPDESK_BENCH_DIR"] = str(work)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings")
    sys.path.insert(0, str(HERE))

    import django

    django.setup()
    from django.core.management import call_command

    t = time.monotonic()
    call_command("migrate", verbosity=0, interactive=False)
    migrate_s = time.monotonic() - t

    from helpdesk.models import FollowUp, FollowUpAttachment, Queue, Ticket

    env = dict(os.environ)
    cmd = [sys.executable, str(HERE / "manage.py"), "get_email"]
    # The command's start-up alone (interpreter, Django, no queue to read yet), for context.
    t = time.monotonic()
    subprocess.run(cmd, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    startup_s = time.monotonic() - t
    before = resource.getrusage(resource.RUSAGE_CHILDREN)

    Queue.objects.create(
        title="Support",
        slug="support",
        email_address="support@acme.test",
        allow_email_submission=True,
        email_box_type="imap",
        email_box_host=args.host,
        email_box_port=args.port,
        email_box_ssl=False,
        email_box_user=args.user,
        email_box_pass=args.password,
        email_box_imap_folder=args.folder,
        email_box_interval=0,
        logging_type="warn",
    )

    log_path = work / "get_email.log"
    timed_out = False
    t = time.monotonic()
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.run(cmd, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=args.timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            timed_out = True
            code = None
    seconds = time.monotonic() - t
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)

    text = log_path.read_text(errors="replace")
    lines = text.splitlines()

    def count(needle):
        return sum(1 for line in lines if needle in line)

    result = {
        "django": django.get_version(),
        "helpdesk": __import__("importlib.metadata").metadata.version("django-helpdesk"),
        "python": sys.version.split()[0],
        "migrate_s": round(migrate_s, 3),
        "seconds": round(seconds, 3),
        "startup_s": round(startup_s, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime, 3),
        "exit_code": code,
        "timed_out": timed_out,
        "tickets": Ticket.objects.count(),
        "followups": FollowUp.objects.count(),
        "attachments": FollowUpAttachment.objects.count(),
        "not_processed": count("was not successfully processed"),
        "ignored": count("was ignored"),
        # Attachments it drops (the mail is still imported): extensions outside HELPDESK_VALID_EXTENSIONS.
        "attachments_refused": sum(line.count("Unsupported file extension") for line in lines),
        "unexpected_errors": count("Unexpected error processing message"),
        "queue_failed": count("Queue processing failed"),
        "tracebacks": count("Traceback (most recent call last)"),
        "starttls_failed": count("StartTLS unsupported or failed"),
        "log": str(log_path),
        "log_tail": lines[-15:],
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
