"""The PostgreSQL store's SQL text, kept together so that the statements read as a whole.

Every statement is scoped to one job by ``%(job)s`` (``bulkchime_jobs.id``) and, where
a runner matters, names it by ``%(me)s`` (its ``bulkchime_runners.id``). Lease times
are the database's clock (``clock_timestamp()``), never a runner's. Text is ordered
with ``COLLATE "C"``, byte by byte, as SQLite orders it.
"""

from __future__ import annotations

__all__ = [
    "ACCOUNTS_PENDING",
    "ADD_DIRECTORY",
    "CLAIM",
    "CLAIM_IN_ACCOUNT",
    "COUNTS",
    "ERROR_COUNTS",
    "FAIL_ACCOUNT",
    "FAIL_UNRESOLVED",
    "FINAL_STATES",
    "FORGET_DIRECTORY",
    "LAST_ERRORS",
    "MARK_DUPLICATES",
    "MARK_IN_FLIGHT",
    "OTHERS_BUSY",
    "OWNERS_OF",
    "PENDING_BY_ACCOUNT",
    "PHASE_COUNTS",
    "RECORD",
    "REJECTED_ROWS",
    "RELEASE",
    "REPORT_PAGE",
    "RESOLVE_FROM_DIRECTORY",
    "RETRY_FAILED",
    "SET_USER_IDS",
    "SET_USER_ID_TASKS",
    "SKIP_AFTER_FAILED_PHASE",
    "TOTAL_ATTEMPTS",
    "UNRESOLVED_COUNTS",
    "UNRESOLVED_PAGE",
    "UNSKIP_AFTER_FAILED",
    "WORK_ITEM_COLUMNS",
]

#: States after which a task is nobody's claim any more.
FINAL_STATES = ("done", "failed", "rejected", "skipped")

#: The columns of a :class:`~bulkchime.store.WorkItem`, of tasks ``t`` and items ``i``.
WORK_ITEM_COLUMNS = (
    "t.item_id, t.phase, i.key, i.account_id, i.email, i.user_id, i.fields, t.attempts"
)

# -- ingest ----------------------------------------------------------------------------

#: Every item after the first with its dedupe key, and the line of that first one.
MARK_DUPLICATES = """
    WITH d AS MATERIALIZED (
        SELECT job_id, id, first_line FROM (
            SELECT job_id, id,
                   first_value(line) OVER w AS first_line,
                   row_number() OVER w AS rank
            FROM bulkchime_items WHERE job_id = %(job)s AND dedupe IS NOT NULL
            WINDOW w AS (PARTITION BY dedupe ORDER BY id)
        ) AS ranked WHERE rank > 1
    )
    UPDATE bulkchime_tasks AS t
    SET state = 'skipped', error_code = 'Duplicate', owner = NULL,
        message = 'duplicate of line ' || coalesce(d.first_line::text, '?') || '; sent once'
    FROM d
    WHERE t.job_id = d.job_id AND t.item_id = d.id AND t.state = 'pending'
"""

# -- claims ----------------------------------------------------------------------------

#: The rows picked are materialized once, and the tasks and items found from them by
#: primary key: the job's keys come from them, not from a constant the planner would
#: estimate from statistics that a fresh job's rows are not in yet.
_CLAIM = """
    WITH c AS MATERIALIZED (
        SELECT job_id, item_id, phase FROM bulkchime_tasks
        WHERE job_id = %(job)s AND phase = %(phase)s AND state = 'pending' AND owner IS NULL
        {account}
        ORDER BY item_id LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
    UPDATE bulkchime_tasks AS t SET owner = %(me)s
    FROM c, bulkchime_items AS i
    WHERE t.job_id = c.job_id AND t.item_id = c.item_id AND t.phase = c.phase
      AND i.job_id = c.job_id AND i.id = c.item_id
    RETURNING {columns}
"""
CLAIM = _CLAIM.format(account="", columns=WORK_ITEM_COLUMNS)
CLAIM_IN_ACCOUNT = _CLAIM.format(account="AND account_id = %(account)s", columns=WORK_ITEM_COLUMNS)
RELEASE = (
    "UPDATE bulkchime_tasks SET owner = NULL "
    "WHERE owner = %(me)s AND job_id = %(job)s AND state = 'pending'"
)
#: The tasks a call names, as keys to find them by (see :data:`CLAIM`).
_KEYS = """
    WITH o AS MATERIALIZED (
        SELECT %(job)s::integer AS job_id, item_id, phase
        FROM unnest(%(items)s::bigint[], %(phases)s::integer[]) AS o(item_id, phase)
    )
"""
#: Who holds each of the tasks about to be sent, locked in a fixed order (no deadlock).
OWNERS_OF = (
    _KEYS
    + """
    SELECT t.owner FROM bulkchime_tasks AS t JOIN o
      ON t.job_id = o.job_id AND t.item_id = o.item_id AND t.phase = o.phase
    ORDER BY t.item_id, t.phase
    FOR UPDATE OF t
"""
)
MARK_IN_FLIGHT = (
    _KEYS
    + """
    UPDATE bulkchime_tasks AS t
    SET state = 'in_flight', owner = %(me)s, updated = clock_timestamp()
    FROM o
    WHERE t.job_id = o.job_id AND t.item_id = o.item_id AND t.phase = o.phase
      AND t.state IN ('pending', 'in_flight')
"""
)
#: Outcomes of tasks nobody else holds. ``call_id`` makes a call that is run again
#: (its reply lost with the connection) skip what it already wrote: attempts are
#: added once. The count of final outcomes goes to the runner's ``items_done``.
RECORD = """
    WITH o AS MATERIALIZED (
        SELECT %(job)s::integer AS job_id, * FROM unnest(
            %(items)s::bigint[], %(phases)s::integer[], %(states)s::text[],
            %(codes)s::text[], %(messages)s::text[], %(results)s::text[], %(sends)s::integer[]
        ) AS o(item_id, phase, state, error_code, message, result, sends)
    ), applied AS (
        UPDATE bulkchime_tasks AS t
        SET state = o.state, error_code = o.error_code, message = o.message,
            result = coalesce(o.result, t.result), attempts = t.attempts + o.sends,
            updated = clock_timestamp(), call_id = %(call)s,
            owner = CASE WHEN o.state IN ('pending', 'in_flight') THEN t.owner END
        FROM o
        WHERE t.job_id = o.job_id AND t.item_id = o.item_id AND t.phase = o.phase
          AND (t.owner IS NULL OR t.owner = %(me)s)
          AND t.call_id IS DISTINCT FROM %(call)s
        RETURNING o.state
    )
    UPDATE bulkchime_runners SET items_done = items_done + (
        SELECT count(*) FROM applied WHERE state NOT IN ('pending', 'in_flight')
    )
    WHERE id = %(me)s
"""
#: Tasks of the phase another runner holds (found by the small index of owned tasks),
#: or left in flight by nobody's claim.
OTHERS_BUSY = """
    SELECT EXISTS (
        SELECT 1 FROM bulkchime_tasks
        WHERE owner IS NOT NULL AND owner <> %(me)s AND job_id = %(job)s
          AND phase = %(phase)s AND state IN ('pending', 'in_flight')
    ) OR EXISTS (
        SELECT 1 FROM bulkchime_tasks
        WHERE job_id = %(job)s AND phase = %(phase)s AND state = 'in_flight' AND owner IS NULL
    )
"""

# -- the work queue ----------------------------------------------------------------------

ACCOUNTS_PENDING = (
    "SELECT DISTINCT account_id FROM bulkchime_tasks "
    "WHERE job_id = %(job)s AND phase = %(phase)s AND state IN ('pending', 'in_flight')"
)
SKIP_AFTER_FAILED_PHASE = """
    UPDATE bulkchime_tasks AS t
    SET state = 'skipped', error_code = 'PreviousPhaseFailed', owner = NULL,
        message = 'not sent: ' || prev.action || ' ' || prev.state
    FROM bulkchime_tasks AS prev
    WHERE t.job_id = %(job)s AND t.phase = %(phase)s AND t.state = 'pending'
      AND prev.job_id = t.job_id AND prev.item_id = t.item_id AND prev.phase = t.phase - 1
      AND prev.state IN ('failed', 'rejected')
"""
RETRY_FAILED = (
    "UPDATE bulkchime_tasks SET state = 'pending', attempts = 0, owner = NULL "
    "WHERE job_id = %(job)s AND state = 'failed'"
)
UNSKIP_AFTER_FAILED = (
    "UPDATE bulkchime_tasks SET state = 'pending', error_code = NULL, message = NULL "
    "WHERE job_id = %(job)s AND state = 'skipped' AND error_code = 'PreviousPhaseFailed'"
)
FAIL_ACCOUNT = """
    UPDATE bulkchime_tasks
    SET state = 'failed', error_code = %(code)s, message = %(message)s, owner = NULL,
        updated = clock_timestamp()
    WHERE job_id = %(job)s AND phase = %(phase)s AND state IN ('pending', 'in_flight')
      AND account_id = %(account)s
"""

# -- resolution ------------------------------------------------------------------------

_FOUND = """
    WITH f AS MATERIALIZED (
        SELECT %(job)s::integer AS job_id, * FROM unnest(
            %(items)s::bigint[], %(users)s::text[], %(accounts)s::text[]
        ) AS f(item_id, user_id, account_id)
    )
"""
SET_USER_IDS = (
    _FOUND
    + """
    UPDATE bulkchime_items AS i
    SET user_id = f.user_id, account_id = coalesce(f.account_id, i.account_id)
    FROM f WHERE i.job_id = f.job_id AND i.id = f.item_id
"""
)
SET_USER_ID_TASKS = (
    _FOUND
    + """
    UPDATE bulkchime_tasks AS t SET account_id = f.account_id
    FROM f
    WHERE t.job_id = f.job_id AND t.item_id = f.item_id AND f.account_id IS NOT NULL
      AND t.account_id IS DISTINCT FROM f.account_id
"""
)
ADD_DIRECTORY = """
    INSERT INTO bulkchime_directory (job_id, account_id, email, user_id)
    SELECT %(job)s, %(account)s, p.email, p.user_id
    FROM unnest(%(emails)s::text[], %(users)s::text[]) AS p(email, user_id)
    ON CONFLICT (job_id, account_id, email) DO UPDATE SET user_id = excluded.user_id
"""
#: Each unresolved item looks its email up by the directory's primary key (a join could
#: scan the items once per scanned email, were the statistics stale).
_DIRECTORY_ENTRY = """
    SELECT d.user_id FROM bulkchime_directory AS d
    WHERE d.job_id = i.job_id AND d.account_id = i.account_id AND d.email = i.email
"""
RESOLVE_FROM_DIRECTORY = f"""
    UPDATE bulkchime_items AS i SET user_id = ({_DIRECTORY_ENTRY})
    WHERE i.job_id = %(job)s AND i.user_id IS NULL AND i.account_id = %(account)s
      AND EXISTS ({_DIRECTORY_ENTRY})
"""
FORGET_DIRECTORY = (
    "DELETE FROM bulkchime_directory WHERE job_id = %(job)s AND account_id = %(account)s"
)
UNRESOLVED_COUNTS = """
    SELECT i.account_id, count(*) FROM bulkchime_tasks AS t
    JOIN bulkchime_items AS i ON i.job_id = t.job_id AND i.id = t.item_id
    WHERE t.job_id = %(job)s AND t.phase = %(phase)s AND t.state = 'pending'
      AND i.user_id IS NULL
    GROUP BY i.account_id
"""
UNRESOLVED_PAGE = f"""
    SELECT {WORK_ITEM_COLUMNS} FROM bulkchime_tasks AS t
    JOIN bulkchime_items AS i ON i.job_id = t.job_id AND i.id = t.item_id
    WHERE t.job_id = %(job)s AND t.phase = %(phase)s AND t.state = 'pending'
      AND i.user_id IS NULL AND i.account_id IS NOT DISTINCT FROM %(account)s
      AND t.item_id > %(after)s
    ORDER BY t.item_id LIMIT %(limit)s
"""
FAIL_UNRESOLVED = """
    UPDATE bulkchime_tasks AS t
    SET state = 'failed', error_code = 'NotFound', owner = NULL, updated = clock_timestamp(),
        message = CASE WHEN i.account_id IS NULL
            THEN 'no account has a user with email ' || coalesce(i.email, i.key)
            ELSE 'no user with email ' || coalesce(i.email, i.key) || ' in account '
                 || i.account_id END
    FROM bulkchime_items AS i
    WHERE t.job_id = %(job)s AND t.phase = %(phase)s AND t.state = 'pending'
      AND i.job_id = t.job_id AND i.id = t.item_id AND i.user_id IS NULL
"""

# -- reading -----------------------------------------------------------------------------

PHASE_COUNTS = (
    "SELECT state, count(*) FROM bulkchime_tasks "
    "WHERE job_id = %(job)s AND phase = %(phase)s GROUP BY state"
)
PENDING_BY_ACCOUNT = (
    "SELECT account_id, count(*) FROM bulkchime_tasks "
    "WHERE job_id = %(job)s AND phase = %(phase)s AND state IN ('pending', 'in_flight') "
    "GROUP BY account_id"
)
REJECTED_ROWS = """
    SELECT i.line, t.state, coalesce(t.message, t.error_code, '') FROM bulkchime_tasks AS t
    JOIN bulkchime_items AS i ON i.job_id = t.job_id AND i.id = t.item_id
    WHERE t.job_id = %(job)s AND t.phase = 0 AND t.state IN ('rejected', 'skipped', 'failed')
    ORDER BY i.id
"""
COUNTS = "SELECT state, count(*) FROM bulkchime_tasks WHERE job_id = %(job)s GROUP BY state"
ERROR_COUNTS = """
    SELECT coalesce(error_code, '?') AS code, count(*) FROM bulkchime_tasks
    WHERE job_id = %(job)s AND state IN ('failed', 'rejected')
    GROUP BY 1 ORDER BY count(*) DESC, coalesce(error_code, '?') COLLATE "C"
"""
LAST_ERRORS = """
    SELECT i.key, coalesce(t.error_code, ''), coalesce(t.message, '') FROM bulkchime_tasks AS t
    JOIN bulkchime_items AS i ON i.job_id = t.job_id AND i.id = t.item_id
    WHERE t.job_id = %(job)s AND t.state = 'failed'
    ORDER BY t.updated DESC NULLS LAST, t.item_id DESC, t.phase DESC LIMIT %(limit)s
"""
TOTAL_ATTEMPTS = "SELECT coalesce(sum(attempts), 0) FROM bulkchime_tasks WHERE job_id = %(job)s"
#: One page of the report after ``(item_id, phase)``: keyset paging on the primary key,
#: so that a page costs the same at the end of a million rows as at the start.
REPORT_PAGE = """
    SELECT i.id, t.phase, i.line, i.key, t.action, i.account_id, i.user_id,
           i.email, t.state, t.error_code, t.message, t.attempts, t.result
    FROM bulkchime_tasks AS t
    JOIN bulkchime_items AS i ON i.job_id = t.job_id AND i.id = t.item_id
    WHERE t.job_id = %(job)s AND (t.job_id, t.item_id, t.phase) > (%(job)s, %(item)s, %(phase)s)
    ORDER BY t.job_id, t.item_id, t.phase LIMIT %(limit)s
"""
