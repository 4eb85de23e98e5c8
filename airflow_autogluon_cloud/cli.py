"""``autogluon-cloud-airflow``: local-backend housekeeping and IAM permission files.

    autogluon-cloud-airflow list                      jobs and endpoints, with state, age, location
    autogluon-cloud-airflow logs NAME [--tail N]      a training or transform job's log
    autogluon-cloud-airflow stop NAME                 stop a job, or delete an endpoint
    autogluon-cloud-airflow permissions --account-id 123456789012 --bucket my-bucket

A process that died is detected and shown as Failed, never as running.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from airflow_autogluon_cloud.exceptions import AutoGluonCloudError, ResourceNotFoundError
from airflow_autogluon_cloud.kinds import ENDPOINT, JobKind


def _hook(root: str | None) -> Any:
    """The local backend's hook: the CLI sees jobs and endpoints as every task does."""
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    return AutoGluonCloudHook(aws_conn_id=None, backend="local", local_root=root)


def _age(created_at: float | None) -> str:
    if not created_at:
        return "-"
    seconds = int(time.time() - created_at)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def cmd_list(args: argparse.Namespace) -> int:
    hook = _hook(args.root)
    rows: list[tuple[str, str, str, str, str]] = []
    for kind in JobKind:
        for desc in hook.jobs.list_jobs(kind):  # a runner that died is reported as Failed
            location = desc.artifact_uri or hook.console_url(kind, desc.name) or "-"
            rows.append((kind.value, desc.name, desc.status.value, _age(desc.created_at), location))
    for endpoint in hook.endpoints.list_endpoints():
        rows.append((ENDPOINT, endpoint.name, endpoint.status.value, _age(endpoint.created_at), endpoint.url or "-"))
    if args.json:
        keys = ("kind", "name", "status", "age", "location")
        print(json.dumps([dict(zip(keys, row, strict=True)) for row in rows], indent=2))
        return 0
    if not rows:
        print(f"No jobs or endpoints under {hook.local_root}")
        return 0
    widths = [max(len(r[i]) for r in [("KIND", "NAME", "STATUS", "AGE", "LOCATION"), *rows]) for i in range(5)]
    for row in [("KIND", "NAME", "STATUS", "AGE", "LOCATION"), *rows]:
        print("  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip())
    return 0


def _kind_of(hook: Any, name: str) -> str:
    """Whether ``name`` is a training job, a transform job or an endpoint."""
    for kind in JobKind:
        try:
            hook.describe_job(kind, name)
            return kind.value
        except ResourceNotFoundError:
            pass
    try:
        hook.describe_endpoint(name)
        return ENDPOINT
    except ResourceNotFoundError:
        raise ResourceNotFoundError(
            "Job or endpoint", name, "local", "Run `autogluon-cloud-airflow list` to see names."
        ) from None


def cmd_logs(args: argparse.Namespace) -> int:
    hook = _hook(args.root)
    kind = _kind_of(hook, args.name)
    text = hook.log_tail(kind, args.name, args.tail or None)
    if not text:
        print(f"No log yet for {kind} {args.name}", file=sys.stderr)
        return 1
    print(text)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    hook = _hook(args.root)
    kind = _kind_of(hook, args.name)
    if kind == ENDPOINT:
        hook.delete_endpoint(args.name)
        print(f"Deleted endpoint {args.name}")
        return 0
    hook.stop_job(kind, args.name)
    print(f"{kind} job {args.name}: {hook.describe_job(kind, args.name).status.value}")
    return 0


def cmd_permissions(args: argparse.Namespace) -> int:
    from airflow_autogluon_cloud.permissions import write_permission_files

    paths = write_permission_files(args.account_id, args.bucket, args.output_dir, args.role_name)
    print(f"Trust relationship: {paths['trust_relationship']}")
    print(f"IAM policy:         {paths['iam_policy']}")
    print("Review both, then: aws iam create-role / create-policy / attach-role-policy (see the docs).")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autogluon-cloud-airflow", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", help="local backend root (default: [autogluon_cloud] local_root)")
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="list local jobs and endpoints")
    p_list.add_argument("--json", action="store_true")
    p_list.set_defaults(func=cmd_list)
    p_logs = sub.add_parser("logs", help="show a job's or endpoint's log")
    p_logs.add_argument("name")
    p_logs.add_argument("--tail", type=int, default=0, help="only the last N lines")
    p_logs.set_defaults(func=cmd_logs)
    p_stop = sub.add_parser("stop", help="stop a job, or delete an endpoint")
    p_stop.add_argument("name")
    p_stop.set_defaults(func=cmd_stop)
    p_perm = sub.add_parser("permissions", help="write the IAM trust relationship and policy files")
    p_perm.add_argument("--account-id", required=True)
    p_perm.add_argument("--bucket", required=True, help="bucket for artifacts (name only)")
    p_perm.add_argument("--role-name", default="AutoGluonSageMakerRole")
    p_perm.add_argument("--output-dir", default=".")
    p_perm.set_defaults(func=cmd_permissions)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except AutoGluonCloudError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
