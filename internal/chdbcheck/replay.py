"""Replays the statements internal/chdbcheck captured from Tributary's code on chdb (ClickHouse
in-process), in order, in one session with its own data folder.

    python replay.py STEPS.json RESULTS.json DATA_DIR

STEPS.json is {"steps": [{"kind", "database", "sql", "data", "external"}]}; kind is "exec", "query"
or "insert". An insert's sql ends in "FORMAT Native" (as clickhouse-go sends it) and its data is
the block clickhouse-go sent, as JSONCompactEachRow lines. Each external table (clickhouse-go's
external data) becomes a temporary table of the same name and structure holding the same rows,
for the statement only: that is what ClickHouse makes of external data.

RESULTS.json gets {"version", "results": [{"ok", "error", "output"}]}, one result per step, output
being the answer of a query in JSONCompact (DateTime as Unix seconds, 64-bit integers unquoted, nan
and inf quoted). A failed step is reported and the replay goes on.
"""

import json
import sys

from chdb import session


def run(s, step):
    for t in step.get("external") or []:
        s.query("CREATE TEMPORARY TABLE %s (%s)" % (t["name"], t["structure"]))
        if t["data"]:
            s.query("INSERT INTO %s FORMAT JSONCompactEachRow\n%s" % (t["name"], t["data"]))
    try:
        kind, sql = step["kind"], step["sql"]
        if kind == "insert":
            head = sql.rstrip()
            if not head.endswith("FORMAT Native"):
                raise ValueError("an insert must end in FORMAT Native: " + sql)
            head = head[: -len("FORMAT Native")]
            s.query(head + "FORMAT JSONCompactEachRow\n" + step["data"])
            return ""
        if kind == "query":
            return s.query(sql, "JSONCompact").bytes().decode()
        s.query(sql)
        return ""
    finally:
        for t in step.get("external") or []:
            s.query("DROP TEMPORARY TABLE IF EXISTS " + t["name"])


def main():
    steps = json.load(open(sys.argv[1]))["steps"]
    s = session.Session(sys.argv[3])
    for setting in ("date_time_output_format = 'unix_timestamp'",
                    "output_format_json_quote_64bit_integers = 0",
                    "output_format_json_quote_denormals = 1"):
        s.query("SET " + setting)
    version = s.query("SELECT version()", "TSV").bytes().decode().strip()
    results, db = [], "default"
    for step in steps:
        try:
            if step["database"] != db:
                s.query("USE " + step["database"])
                db = step["database"]
            results.append({"ok": True, "output": run(s, step)})
        except Exception as e:  # the Go test names the statement and the version
            results.append({"ok": False, "error": str(e)})
    json.dump({"version": version, "results": results}, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
