"""What resolving emails costs in read requests, and which way a phase's resolution took.

Looking emails up one by one has a known price: ``ListUsers(UserEmail)`` per email in a
known account, plus ``ListAccounts(UserEmail)`` first when the account is unknown.
Reading the accounts' users costs a request per page of 200, but the service says
nowhere how many users an account has. So the scan learns its price as it goes
(:class:`ScanTally`): it goes on while the emails it finds have paid for the pages it
read, which keeps a scan that turns out poor within a page of the per-email price.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._text import count

__all__ = [
    "PER_EMAIL_ANYWHERE",
    "PER_EMAIL_IN_ACCOUNT",
    "Resolution",
    "ScanTally",
    "worth_listing",
    "worth_sampling",
]

#: Read requests to look up one email whose account is unknown: ListAccounts(UserEmail)
#: for the account, then ListUsers(UserEmail) for the user.
PER_EMAIL_ANYWHERE = 2
#: Read requests to look up one email in a known account: ListUsers(UserEmail).
PER_EMAIL_IN_ACCOUNT = 1
#: Share of the per-email price that finding out whether a scan pays (listing the
#: accounts, then the first page of each) may cost. It is lost only when the
#: emails turn out to be too few for their organisation.
_PROBE_SHARE = 0.25


def _probe_budget(emails: int) -> float:
    return _PROBE_SHARE * PER_EMAIL_ANYWHERE * emails


def worth_listing(emails: int) -> bool:
    """Whether *emails* with no account are enough to consider a scan at all: the
    smallest probe (one ListAccounts page and one ListUsers page) fits its budget."""
    return 2 <= _probe_budget(emails)


def worth_sampling(emails: int, listing_requests: int, accounts: int) -> bool:
    """Whether reading the first page of each of *accounts* (after *listing_requests*)
    fits the probe budget of *emails* per-email look-ups."""
    return listing_requests + accounts <= _probe_budget(emails)


@dataclass(slots=True)
class ScanTally:
    """A scan of every account for emails with no account: what it spent and found."""

    #: Read requests spent by the scan (the account list and the pages).
    spent: int = 0
    #: Emails the scan found.
    found: int = 0

    def paying(self) -> bool:
        """Whether the per-email look-ups the scan spared cover what it spent.

        While they do, one more page costs at most one request more than looking up
        one by one would have; when they stop doing so, the rest is looked up one by one.
        """
        return self.found * PER_EMAIL_ANYWHERE >= self.spent


@dataclass(slots=True)
class Resolution:
    """Which way a phase's emails were resolved, in read requests: the plan's and the
    log's one line."""

    #: Accounts whose users were read page by page.
    scanned: set[str] = field(default_factory=set)
    #: Read requests the scans made (the account list included).
    scan_requests: int = 0
    #: Per-email look-ups the scans made unnecessary.
    spared: int = 0
    #: Whether a scan stopped before it paid and left its emails to per-email look-ups.
    scan_stopped: bool = False
    #: Emails looked up one by one, and the read requests that took.
    per_email: int = 0
    per_email_requests: int = 0

    def __bool__(self) -> bool:
        return bool(self.scanned or self.per_email)

    def add_scan(self, accounts: set[str], requests: int, spared: int) -> None:
        """Record a scan of *accounts* that took *requests* instead of *spared* look-ups."""
        self.scanned |= accounts
        self.scan_requests += requests
        self.spared += spared

    def add_per_email(self, emails: int, requests: int) -> None:
        """Record *emails* looked up one by one in *requests*."""
        self.per_email += emails
        self.per_email_requests += requests

    @property
    def way(self) -> str:
        """``scan``, ``per-email`` or ``scan+per-email`` (the log's short form)."""
        used = (("scan", bool(self.scanned)), ("per-email", bool(self.per_email)))
        return "+".join(way for way, taken in used if taken)

    def text(self) -> str:
        """``scanned the users of 5 accounts (51 read requests) instead of ~6,000
        per-email look-ups``, ``per-email look-ups (12 emails, 24 read requests)``."""
        parts: list[str] = []
        if self.scanned:
            accounts = count(len(self.scanned), "account")
            requests = count(self.scan_requests, "read request")
            if self.scan_stopped:
                parts.append(f"sampled the users of {accounts} ({requests}; too few matches)")
            else:
                spared = f" instead of ~{self.spared:,} per-email look-ups" if self.spared else ""
                parts.append(f"scanned the users of {accounts} ({requests}){spared}")
        if self.per_email:
            parts.append(
                f"per-email look-ups ({count(self.per_email, 'email')}, "
                f"{count(self.per_email_requests, 'read request')})"
            )
        return ", then ".join(parts)
