"""Every statement the login path runs, written once with `:name` parameters.

They run through store.db.Connection on SQLite (sqlite3) and PostgreSQL (psycopg2) against
the schema of store/schema.py; tests/test_statements.py runs each one on both engines against
the schema that the migrations created. Each read uses one of the schema's indexes, so a
decision costs the same with a thousand or ten million stored events.
"""

# Takes the account's row lock (creating the row on first sight) and returns what it holds.
# On PostgreSQL the row lock serialises concurrent failures of one user, so the failure
# count read after it sees every committed failure; on SQLite BEGIN IMMEDIATE does that.
LOCK_ACCOUNT = """
INSERT INTO accounts (username, first_seen, reset_at, lock_reason, exempt, status_why,
                      notify_on, notify_to)
VALUES (:user, :now, 0, '', :false, '', '', '')
ON CONFLICT (username) DO UPDATE SET username = excluded.username
RETURNING first_seen, last_activity, reset_at, locked_at, lock_expires, lock_reason, exempt,
          status, notify_on, notify_to, lock_count, last_lock_at, unfamiliar_locked_at,
          unfamiliar_lock_expires
"""

ACCOUNT_NAMES = "SELECT username FROM accounts ORDER BY username"

READ_ACCOUNT = """
SELECT first_seen, last_activity, reset_at, locked_at, lock_expires, lock_reason, exempt,
       status, notify_on, notify_to, lock_count, last_lock_at, unfamiliar_locked_at,
       unfamiliar_lock_expires
FROM accounts WHERE username = :user
"""

# The one read of an authorize (and of a recorded success) when the enabled rules need
# nothing of the history but the account and its recent denials (the default settings):
# READ_ACCOUNT's fields, then the denied count of COUNT_OUTCOME_SINCE, in one statement.
ACCOUNT_AND_DENIALS = """
SELECT first_seen, last_activity, reset_at, locked_at, lock_expires, lock_reason, exempt,
       status, notify_on, notify_to, lock_count, last_lock_at, unfamiliar_locked_at,
       unfamiliar_lock_expires,
       (SELECT count(*) FROM events
        WHERE events.username = :user AND events.outcome = 'denied' AND events.ts > :since)
FROM accounts WHERE username = :user
"""

# Copies of accounts a RADIUS module keeps (radius_hook.hot), loaded in one read when it
# starts: the most recently active accounts with no denial since :since (ACCOUNT_AND_DENIALS
# of each, where the count is 0). Reads the accounts table whole, once (no index on
# last_activity: every success would write one more page of it).
RECENT_ACCOUNTS = """
SELECT username, first_seen, last_activity, reset_at, locked_at, lock_expires, lock_reason,
       exempt, status, notify_on, notify_to, lock_count, last_lock_at, unfamiliar_locked_at,
       unfamiliar_lock_expires
FROM accounts
WHERE last_activity > :active_since
  AND username NOT IN (SELECT username FROM events
                       WHERE outcome = 'denied' AND ts > :since)
ORDER BY last_activity DESC
LIMIT :limit
"""

INSERT_EVENT = """
INSERT INTO events (ts, username, channel, service, address, address_raw, client, secure,
                    outcome, reasons, ruser, bucket, net, digest)
VALUES (:ts, :user, :channel, :service, :address, :address_raw, :client, :secure,
        :outcome, :reasons, :ruser, :bucket, :net, :digest)
"""

COUNT_OUTCOME_SINCE = """
SELECT count(*) FROM events
WHERE username = :user AND outcome = :outcome AND ts > :since
"""

# Failures of one count (policy.types: the account lock's has no bucket) since a time.
COUNT_FAILURES_SINCE = """
SELECT count(*) FROM events
WHERE username = :user AND outcome = 'failure' AND ts > :since AND bucket IS NULL
"""

COUNT_UNFAMILIAR_SINCE = """
SELECT count(*) FROM events
WHERE username = :user AND outcome = 'failure' AND ts > :since AND bucket = 'unfamiliar'
"""

# A user's outcomes since a time (radius_hook: which records handed to the recorder are
# stored, and when the failures in the lockout window fell, in which count); the IN list
# lets the (user, outcome, ts) index serve.
OUTCOMES_SINCE = """
SELECT ts, outcome, bucket FROM events
WHERE username = :user AND outcome IN ('success', 'failure', 'denied') AND ts >= :since
"""

# The failures that count from one address key (policy.sources.block_key) since a time:
# every user's, but a repeated wrong password's.
ADDRESS_FAILURES = """
SELECT username, ts FROM events
WHERE net = :net AND outcome = 'failure' AND ts > :since
  AND (bucket IS NULL OR bucket <> 'repeated')
"""

# A user's last distinct wrong passwords (lockout.ignore_repeated_password): each digest
# with its newest time, newest first. Reads the user's failures in the lockout window only.
RECENT_DIGESTS = """
SELECT max(ts), digest FROM events
WHERE username = :user AND outcome = 'failure' AND ts > :since AND digest IS NOT NULL
GROUP BY digest ORDER BY max(ts) DESC LIMIT :limit
"""

FAMILIAR_SOURCES = """
SELECT source FROM familiar_sources WHERE username = :user AND last_success > :since
"""

# A success makes its source familiar (policy.sources.familiar_key); never moves back.
NOTE_FAMILIAR = """
INSERT INTO familiar_sources (username, source, last_success) VALUES (:user, :source, :now)
ON CONFLICT (username, source) DO UPDATE SET
    last_success = CASE WHEN familiar_sources.last_success < excluded.last_success
                        THEN excluded.last_success ELSE familiar_sources.last_success END
"""

READ_BLOCK = """
SELECT address, blocked_at, expires, block_count, cleared_at FROM address_blocks
WHERE address = :net
"""

# The fields of a block a failure sets (policy.decide.after_failure's AddressBlock).
WRITE_BLOCK = """
INSERT INTO address_blocks (address, blocked_at, expires, block_count, failures, users)
VALUES (:address, :blocked_at, :expires, :block_count, :failures, :users)
ON CONFLICT (address) DO UPDATE SET
    blocked_at = excluded.blocked_at, expires = excluded.expires,
    block_count = excluded.block_count, failures = excluded.failures, users = excluded.users
"""

# PostgreSQL only: serialises failures from one address across users until commit, so the
# count of ADDRESS_FAILURES read after it sees every earlier failure (the account row
# lock only orders one user's). SQLite's BEGIN IMMEDIATE already serialises every write.
# The first key namespaces pam-guard's advisory locks ('pg' in ASCII).
LOCK_ADDRESS = "SELECT pg_advisory_xact_lock(28775, hashtext(:net))"

ADDRESS_RULES = "SELECT kind, entry FROM address_rules WHERE username = :user"

LAST_SUCCESS_ADDRESSES = """
SELECT address FROM events
WHERE username = :user AND outcome = 'success'
ORDER BY ts DESC LIMIT :limit
"""

# The newest success of a user (`pam-guard status`): a RADIUS recorder can leave the account's
# last_activity up to policy.account.ACTIVITY_RESOLUTION_SECONDS behind it.
LAST_SUCCESS_TIME = """
SELECT max(ts) FROM events WHERE username = :user AND outcome = 'success'
"""

SUCCESSES_SINCE = """
SELECT ts, address FROM events
WHERE username = :user AND outcome = 'success' AND ts > :since
"""

SESSION_ENDS_SINCE = """
SELECT address, max(ended) FROM sessions
WHERE username = :user AND ended > :since
GROUP BY address
"""

OPEN_SESSIONS = """
SELECT service, address, started, last_update FROM sessions
WHERE username = :user AND ended IS NULL AND last_update > :fresh_since
"""

UPDATE_ACCOUNT_AFTER = """
UPDATE accounts SET
       last_activity = CASE WHEN last_activity IS NULL OR last_activity < :now THEN :now
                            ELSE last_activity END,
       status = :status, status_why = :status_why,
       status_since = CASE WHEN status = :status THEN status_since ELSE :now END
WHERE username = :user
"""

# A recorded success in one statement: RESET_FAILURES and UPDATE_ACCOUNT_AFTER together.
# A success stored after a later outcome (a RADIUS recorder's batch, a moment behind a PAM
# login) never moves the failure-count reset or the last activity back (nor do
# UPDATE_ACCOUNT_AFTER and RESET_FAILURES).
RECORD_SUCCESS = """
UPDATE accounts SET
       reset_at = CASE WHEN reset_at IS NULL OR reset_at < :now THEN :now ELSE reset_at END,
       last_activity = CASE WHEN last_activity IS NULL OR last_activity < :now THEN :now
                            ELSE last_activity END,
       status = :status,
       status_why = :status_why,
       status_since = CASE WHEN status = :status THEN status_since ELSE :now END
WHERE username = :user
"""

# A status recomputed with nobody logging in (pam-guard status): activity time unchanged.
SET_STATUS = """
UPDATE accounts SET status = :status, status_why = :status_why, status_since = :now
WHERE username = :user
"""

RESET_FAILURES = """
UPDATE accounts SET
       reset_at = CASE WHEN reset_at IS NULL OR reset_at < :now THEN :now ELSE reset_at END
WHERE username = :user
"""

# The fields policy.account.failure_locks gives (every lock field of the account).
WRITE_LOCKS = """
UPDATE accounts SET locked_at = :locked_at, lock_expires = :lock_expires,
       lock_reason = :lock_reason, unfamiliar_locked_at = :unfamiliar_locked_at,
       unfamiliar_lock_expires = :unfamiliar_lock_expires, lock_count = :lock_count,
       last_lock_at = :last_lock_at
WHERE username = :user
"""

# The fields policy.account.locked gives (an admin's lock).
SET_LOCK = """
UPDATE accounts SET locked_at = :locked_at, lock_expires = :lock_expires, lock_reason = :lock_reason
WHERE username = :user
"""

# The fields policy.account.unlocked gives (pam-guard unlock).
CLEAR_LOCK = """
UPDATE accounts SET locked_at = :locked_at, lock_expires = :lock_expires,
       lock_reason = :lock_reason, reset_at = :reset_at,
       unfamiliar_locked_at = :unfamiliar_locked_at,
       unfamiliar_lock_expires = :unfamiliar_lock_expires, lock_count = :lock_count,
       last_lock_at = :last_lock_at
WHERE username = :user
"""

# The two newest successes of a user (the session-open line: failures since the last login).
LAST_SUCCESSES = """
SELECT ts FROM events WHERE username = :user AND outcome = 'success'
ORDER BY ts DESC LIMIT 2
"""

# A user's newest failure between two times, and how many there were (the session-open line).
FAILURES_BETWEEN = """
SELECT ts, address, address_raw,
       (SELECT count(*) FROM events
        WHERE username = :user AND outcome = 'failure' AND ts > :since AND ts < :until)
FROM events
WHERE username = :user AND outcome = 'failure' AND ts > :since AND ts < :until
ORDER BY ts DESC LIMIT 1
"""

# Where a user's last failures came from (a lock notice lists them), newest first.
LAST_FAILURE_SOURCES = """
SELECT address, address_raw FROM events
WHERE username = :user AND outcome = 'failure' AND ts <= :now
ORDER BY ts DESC LIMIT :limit
"""

LAST_NOTICE = """
SELECT max(created) FROM outbox WHERE kind = :kind AND subject = :subject
"""

INSERT_NOTICE = """
INSERT INTO outbox (created, kind, subject, recipients, title, body, attempts, next_try)
VALUES (:now, :kind, :subject, :recipients, :title, :body, 0, :now)
"""

OPEN_SESSION = """
INSERT INTO sessions (username, channel, service, session_key, nas, address, client,
                      started, last_update)
VALUES (:user, :channel, :service, :key, :nas, :address, :client, :now, :now)
ON CONFLICT (channel, nas, session_key) DO UPDATE
SET last_update = excluded.last_update, ended = NULL
"""

TOUCH_SESSION = """
UPDATE sessions SET last_update = :now
WHERE channel = :channel AND nas = :nas AND session_key = :key AND ended IS NULL
"""

CLOSE_SESSION = """
UPDATE sessions SET ended = :now, last_update = :now
WHERE channel = :channel AND nas = :nas AND session_key = :key AND ended IS NULL
"""

SESSION_USER = """
SELECT username FROM sessions WHERE channel = :channel AND nas = :nas AND session_key = :key
"""

# A NAS that reboots (Accounting-On/Off) ends every session it had open.
CLOSE_NAS_SESSIONS = """
UPDATE sessions SET ended = :now, last_update = :now
WHERE channel = :channel AND nas = :nas AND ended IS NULL
"""

TOUCH_ACTIVITY = "UPDATE accounts SET last_activity = :now WHERE username = :user"
