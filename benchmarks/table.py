"""The rows `make bench` prints: each figure with its target and whether it is met."""

from __future__ import annotations

from typing import Any

from .targets import check, met_text, verdict


class Rows:
    """Table rows and, for results.json, one verdict per figure."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.verdicts: list[dict[str, Any]] = []

    def add(
        self,
        name: str,
        median: str,
        p99: Any = "",
        n: Any = "",
        key: str | None = None,
        value: float | None = None,
        judged: dict[str, Any] | None = None,
    ) -> None:
        """One figure; `key` names its target in TARGETS, `judged` is a check on counts."""
        judged = judged or verdict(key, value)
        self.rows.append(
            {
                "benchmark": name,
                "median": median,
                "p99": p99,
                "n": n,
                "target": judged["target"],
                "met": met_text(judged["met"]),
            }
        )
        self.verdicts.append({"figure": name, "value": value, **judged})

    def latency(self, name: str, result: dict[str, Any], key: str | None = None) -> None:
        """A timings() figure (or the error that kept it from being measured)."""
        if "error" in result:
            self.add(name, f"error: {result['error']}", key=key)
            return
        digits = 3 if result["median_ms"] < 1 else 2
        self.add(
            name,
            f"{result['median_ms']:.{digits}f} ms",
            f"{result['p99_ms']:.{digits}f} ms",
            result["n"],
            key=key,
            value=result["median_ms"],
        )

    def rate(self, name: str, result: dict[str, Any], key: str) -> None:
        """Invokes per second: the median of the rounds; every round's rate and the errors."""
        if "error" in result:
            self.add(name, f"error: {result['error']}", key=key)
            return
        rounds = " / ".join(f"{r:.0f}" for r in result["rounds"])
        judged = verdict(key, result["per_s"])
        judged["met"] = judged["met"] and result["errors"] == 0
        judged["target"] += ", 0 errors"
        self.add(
            name,
            f"{result['per_s']:.0f} /s",
            f"rounds {rounds}; errors {result['errors']}",
            result["n"],
            value=result["per_s"],
            judged=judged,
        )


def build(results: dict[str, Any]) -> Rows:
    """Every figure of a `make bench` run, in the order of the table."""
    out = Rows()
    start = results["local_cloud_start"]
    out.add(
        "local cloud start (cold, to healthy)",
        f"{start['median_s']:.2f} s",
        "",
        start["runs"],
        value=start["median_s"],
    )
    portable, calls = results["portable"], results["calls"]
    out.latency("dynamodb GetItem (boto3 round trip)", portable["dynamodb_get"], "dynamodb_get_p50")
    out.latency("dynamodb PutItem (boto3 round trip)", portable["dynamodb_put"], "dynamodb_put_p50")
    for name, figure in calls.items():
        out.latency(name, figure)
    cold = portable["lambda_cold_start"]
    out.add(
        "lambda cold start (first invoke after a configuration change)",
        f"error: {cold['error']}" if "error" in cold else f"{cold['median_ms']:.2f} ms",
        "",
        cold.get("n", ""),
        value=cold.get("median_ms"),
    )
    out.latency("lambda warm invoke, echo handler", portable["lambda_warm"], "lambda_warm_p50")
    callers = portable["lambda_rate_echo"].get("callers", 8)
    out.rate(
        f"lambda invokes/s, {callers} callers, echo handler",
        portable["lambda_rate_echo"],
        "lambda_rate_echo",
    )
    out.rate(
        f"lambda invokes/s, {callers} callers, handler that prints one line",
        portable["lambda_rate_printing"],
        "lambda_rate_printing",
    )
    if "client_floor" in results:
        _client_floor(out, results["client_floor"])
    data_api = results["data_api"]
    out.latency("data api INSERT (boto3 round trip)", data_api["data api INSERT"])
    out.latency(
        "data api SELECT by key (boto3 round trip)",
        data_api["data api SELECT by key"],
        "data_api_select_p50",
    )
    _alb(out, results["alb"])
    _memory(out, results["lambda_memory"])
    _streams(out, results["dynamodb_streams"])
    _cache(out, results["elasticache"])
    _proxy(out, results["rds_proxy"])
    if "rest_api_crud" in results:
        out.latency(
            "pattern 24: GET one customer, REST API -> function -> executor -> PostgreSQL (warm)",
            results["rest_api_crud"]["get_customer"],
            "rest_crud_get_p50",
        )
    if "fargate_inventory" in results:
        _inventory(out, results["fargate_inventory"])
    return out


def _client_floor(out: Rows, floor: dict[str, Any]) -> None:
    """The same calls answered by a replay (client_floor.py), and what the local cloud adds."""
    if "error" in floor:
        out.add("boto3 client alone (answers replayed)", f"error: {floor['error']}")
        return
    for key, what in (
        ("dynamodb_get", "dynamodb GetItem"),
        ("dynamodb_put", "dynamodb PutItem"),
        ("lambda_warm", "lambda warm invoke"),
    ):
        out.latency(f"{what}: boto3 client alone (answer replayed)", floor[key])
        added = floor[key]["added_ms"]
        out.add(
            f"{what}: time the local cloud adds (p50 of real minus replayed calls, in turn)",
            f"{added:.3f} ms",
            f"real calls alongside: {floor[key]['paired_median_ms']:.3f} ms",
            value=added,
        )
    rate = floor["lambda_rate_echo"]
    rounds = " / ".join(f"{r:.0f}" for r in rate["rounds"])
    out.add(
        f"lambda invokes/s, {rate['callers']} callers, echo: boto3 client alone (answer replayed)",
        f"{rate['per_s']:.0f} /s",
        f"rounds {rounds}; errors {rate['errors']}",
        rate["n"],
        value=rate["per_s"],
    )


def _alb(out: Rows, alb: dict[str, Any]) -> None:
    out.latency("GET to a Fargate task, direct to its port", alb["direct"])
    out.latency("GET to a Fargate task, through the local ALB", alb["via_alb"])
    out.add(
        "ALB-forwarded / direct (ratio of medians; of p99s)",
        f"{alb['ratio_median']:.2f}x",
        f"{alb['ratio_p99']:.2f}x",
        value=alb["ratio_median"],
    )


def _memory(out: Rows, memory: dict[str, Any]) -> None:
    out.add(
        f"daemon RSS before / after {memory['invokes']} invokes of a printing function (8 callers)",
        f"{memory['rss_before_mib']:.0f} / {memory['rss_after_mib']:.0f} MiB",
        f"{memory['kib_per_invoke']:.2f} KiB/invoke overall, "
        f"{memory['late_kib_per_invoke']:.2f} in the last stretch",
        memory["invokes"],
        value=memory["rss_after_mib"],
    )


def _streams(out: Rows, streams: dict[str, Any]) -> None:
    out.add(
        f"DynamoDB PutItem to the row in Aurora through a stream mapping "
        f"({streams['burst']} writes, 4 callers)",
        f"{streams['lag_p50_ms']:.1f} ms",
        f"{streams['lag_p99_ms']:.1f} ms",
        streams["burst"],
        key="stream_lag_p50",
        value=streams["lag_p50_ms"],
    )
    exact = streams["rows"] == streams["written"] == streams["deliveries"]
    out.add(
        "stream records per second through one shard (a backlog drained); "
        "rows / deliveries / writes",
        f"{streams['records_per_s']:.0f} /s",
        f"{streams['rows']} / {streams['deliveries']} / {streams['written']}",
        streams["backlog"],
        value=streams["records_per_s"],
        judged=check("rate: no target; no record lost or duplicated (issue 13)", exact),
    )


def _cache(out: Rows, cache: dict[str, Any]) -> None:
    for key, what, target in (
        ("get_hit_tls", "GET hit on a warm TLS connection", "cache_hit_p50"),
        ("miss_aurora", "miss: GET, SELECT from Aurora (pymysql), SET with TTL", None),
        ("lambda_hit", "Lambda invoke end to end, cache hit", None),
        ("lambda_miss", "Lambda invoke end to end, miss that reads Aurora", None),
    ):
        out.latency(f"ElastiCache Serverless: {what}", cache[key], target)
    out.add(
        "ElastiCache Serverless: Lambda miss / hit (ratio of medians)",
        f"{cache['lambda_miss_over_hit']:.1f}x",
        key="cache_lambda_miss_over_hit",
        value=cache["lambda_miss_over_hit"],
    )


def _proxy(out: Rows, proxy: dict[str, Any]) -> None:
    out.latency("primary-key SELECT straight to the database (pymysql)", proxy["select_direct"])
    out.latency("primary-key SELECT through RDS Proxy", proxy["select_proxy"])
    out.add(
        "RDS Proxy: time added per query at p50",
        f"{proxy['added_p50_ms']:.3f} ms",
        key="rds_proxy_added_p50",
        value=proxy["added_p50_ms"],
    )
    out.latency(
        "connection set-up through RDS Proxy (TLS verified + auth)", proxy["connect_proxy_tls"]
    )
    storm = proxy["storm"]
    within = storm["errors"] == 0 and storm["database_connections_max"] <= storm["pool_limit"]
    out.add(
        f"RDS Proxy, {storm['clients']} clients x {storm['queries_each']} queries: errors "
        f"{storm['errors']}, database connections {storm['database_connections_max']} (pool "
        f"limit {storm['pool_limit']}), daemon RSS {storm['daemon_rss_before_mib']:.0f} -> "
        f"{storm['daemon_rss_with_clients_mib']:.0f} MiB",
        f"{storm['wall_s']:.2f} s wall",
        "",
        storm["clients"],
        value=storm["wall_s"],
        judged=check("0 errors, connections <= pool limit (issue 12)", within),
    )


def _inventory(out: Rows, inventory: dict[str, Any]) -> None:
    name = "pattern 22: GET /inventory through the ALB (2 tasks, RDS Proxy, Aurora)"
    if "error" in inventory:
        out.add(name, f"error: {inventory['error']}", judged=check("0 errors (issue 15)", False))
        return
    out.add(
        f"{name}, {inventory['clients']} keep-alive clients: {inventory['per_s']:.0f} requests/s, "
        f"errors {inventory['errors']}",
        f"{inventory['median_ms']:.2f} ms",
        f"{inventory['p99_ms']:.2f} ms",
        inventory["n"],
        value=inventory["per_s"],
        judged=check("0 errors (issue 15)", inventory["errors"] == 0),
    )
