"""Console pages a person opens from an error message."""

from __future__ import annotations

from urllib.parse import quote


def log_stream_url(arn: str | None) -> str | None:
    """The CloudWatch console page of a log stream, from its ARN (as a ``ModelError`` gives it).

    ``arn:aws:logs:<region>:<account>:log-group:<group>:log-stream:<stream>``; the console
    wants the group and stream URL-encoded with ``%`` written as ``$25``.
    """
    if not arn or ":log-group:" not in arn:
        return None
    parts = arn.split(":")
    region = parts[3] if len(parts) > 3 else "us-east-1"
    group, _, stream = arn.split(":log-group:", 1)[1].partition(":log-stream:")

    def encode(value: str) -> str:
        return quote(value, safe="").replace("%", "$25")

    url = f"https://console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{encode(group)}"
    return f"{url}/log-events/{encode(stream)}" if stream else url
