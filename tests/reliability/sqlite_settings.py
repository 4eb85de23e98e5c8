"""SQLite connection arguments for Airflow's metadata database when several test workers share it.

sqlite3 gives up on a locked database after 5 s by default; concurrent dag.test() runs write to
one file, so they wait for the lock instead (``[database] sql_alchemy_connect_args``).
"""

CONNECT_ARGS = {"timeout": 120}
