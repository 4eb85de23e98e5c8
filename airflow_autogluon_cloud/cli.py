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


def _backend(root: str | None) -> Any:
    from airflow_autogluon_cloud.backends.local.backend import LocalBackend
    from airflow_autogluon_cloud.settings import resolve_local_root

    return LocalBackend(resolve_local_root(root))


def _age(created_at: float | None) -> str:
    if not created_at:
        return "-"
    seconds = int(time.time() - created_at)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def cmd_list(args: argparse.Namespace) -> int:
    from airflow_autogluon_cloud.backends.local.state import TRAINING, TRANSFORM

    backend = _backend(args.root)
    rows: list[tuple[str, str, str, str, str]] = []
    for kind in (TRAINING, TRANSFORM):
        for record in backend.store.list(kind):
            desc = backend._describe_job(kind, record.name)  # detects dead runners
            location = desc.artifact_uri or str(backend.log_path(kind, record.name))
            rows.append((kind, desc.name, desc.status.value, _age(desc.created_at), location))
    for endpoint in backend.list_endpoints():
        rows.append(("endpoint", endpoint.name, endpoint.status.value, _age(endpoint.created_at), endpoint.url or "-"))
    if args.json:
        keys = ("kind", "name", "status", "age", "location")
        print(json.dumps([dict(zip(keys, row, strict=True)) for row in rows], indent=2))
        return 0
    if not rows:
        print(f"No jobs or endpoints under {backend.root}")
        return 0
    widths = [max(len(r[i]) for r in [("KIND", "NAME", "STATUS", "AGE", "LOCATION"), *rows]) for i in range(5)]
    for row in [("KIND", "NAME", "STATUS", "AGE", "LOCATION"), *rows]:
        print("  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip())
    return 0


def _kind_of(backend: Any, name: str) -> str:
    from airflow_autogluon_cloud.backends.local.state import ENDPOINT, TRAINING, TRANSFORM

    for kind in (TRAINING, TRANSFORM, ENDPOINT):
        if backend.store.get(kind, name) is not None:
            return kind
    raise ResourceNotFoundError("Job or endpoint", name, "local", "Run `autogluon-cloud-airflow list` to see names.")


def cmd_logs(args: argparse.Namespace) -> int:
    from airflow_autogluon_cloud.backends.local.endpoints import endpoint_log_path

    backend = _backend(args.root)
    kind = _kind_of(backend, args.name)
    path = endpoint_log_path(backend, args.name) if kind == "endpoint" else backend.log_path(kind, args.name)
    if not path.exists():
        print(f"No log yet at {path}", file=sys.stderr)
        return 1
    lines = path.read_text(errors="replace").splitlines()
    print("\n".join(lines[-args.tail :] if args.tail else lines))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    backend = _backend(args.root)
    kind = _kind_of(backend, args.name)
    if kind == "training":
        backend.stop_training_job(args.name)
    elif kind == "transform":
        backend.stop_transform_job(args.name)
    else:
        backend.delete_endpoint(args.name)
        print(f"Deleted endpoint {args.name}")
        return 0
    print(f"{kind} job {args.name}: {backend._describe_job(kind, args.name).status.value}")
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
