#!/usr/bin/python3
"""Score the alerts of a database against a scenario's ground truth
(`tidewatch simulate --out DIR` writes DIR/truth.json).

    alerts_score.py --truth DIR/truth.json --db "host=... dbname=... user=..."
                    [--json OUT.json] [--psql PSQL]
    alerts_score.py --truth DIR/truth.json --csv-dir DIR   (exports made earlier)

Reads, with `psql --csv` (read-only queries):
  alerts (rule, subject_kind, subject, severity, known_at, evidence) and, per
  alert, the earliest event time (alert_updates.known_at) at which it stood
  at medium severity or above; prov_item_keys joined to prov_items (keys ->
  item ids and their merge roots). --csv-dir reads alerts.csv and keys.csv
  with the same columns instead (see QUERIES below).

Prints:
  recall      network items with warn_by (seized or launched) named by an
              alert at medium severity or above whose known_at (event time of
              its evidence) is before warn_by; an alert names an item when its
              subject is the item (any item id or merge root its keys map
              to), a buyer cluster that held it (cluster_keys) or one of its
              consignments;
  precision   of the alerts at medium or above, those that concern a network
              (its items, parties' clusters, consignments);
  coastal     alerts (all, and medium or above) on legitimate coastal trade
              (its items, its dealers' and buyers' clusters, its consignments)
              that do not concern a network;
  per rule    alerts, medium or above, concerning a network, on coastal trade;
  recall by network kind and by fate.
Exit status 0 (figures, not a verdict), 2 on bad input."""

import argparse
import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone

QUERIES = {
    "alerts": """
        SELECT a.alert_id, a.rule, a.subject_kind, a.subject, a.severity,
               extract(epoch FROM a.known_at)::bigint AS known_at,
               (SELECT extract(epoch FROM min(u.known_at))::bigint FROM alert_updates u
                 WHERE u.alert_id = a.alert_id AND u.severity >= 2) AS medium_known_at,
               a.evidence::text AS evidence
          FROM alerts a ORDER BY a.alert_id""",
    "keys": """
        SELECT k.key_kind, k.key, k.maker, k.item_id, i.root_id
          FROM prov_item_keys k JOIN prov_items i ON i.item_id = k.item_id""",
}


def iso_to_epoch(s):
    return int(datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


def psql_rows(psql, db, sql):
    out = subprocess.run([psql, "-X", "-q", "--csv", "-v", "ON_ERROR_STOP=1", db, "-c", sql],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("alerts_score: psql failed: " + out.stderr.strip())
    return list(csv.DictReader(io.StringIO(out.stdout)))


def load(args):
    if args.csv_dir:
        res = {}
        for name in QUERIES:
            with open(os.path.join(args.csv_dir, name + ".csv"), newline="") as f:
                res[name] = list(csv.DictReader(f))
        return res
    return {name: psql_rows(args.psql, args.db, sql) for name, sql in QUERIES.items()}


def key_index(rows):
    """(kind, key) -> [(maker, item_id, root_id)]."""
    idx = {}
    for r in rows:
        kind = "serial" if r["key_kind"] == "1" else "hull"
        idx.setdefault((kind, r["key"]), []).append((r["maker"], r["item_id"], r["root_id"]))
    return idx


def item_ids(item, idx):
    """Every item id and merge root the item's keys name in the database."""
    ids = set()
    for k in item["keys"]:
        for maker, iid, root in idx.get((k["kind"], k["key"]), []):
            if maker == k["maker"] or not maker or not k["maker"]:
                ids.add(iid)
                ids.add(root)
    return ids


def evidence_refs(text):
    """Every "source_ref" value anywhere in an alert's evidence."""
    out = set()
    try:
        stack = [json.loads(text)] if text else []
    except ValueError:
        return out
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k, x in v.items():
                if k == "source_ref" and isinstance(x, str):
                    out.add(x)
                else:
                    stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)
    return out


def score(truth, data):
    idx = key_index(data["keys"])
    net_items = truth["network_items"]
    kinds = {n["id"]: n["kind"] for n in truth["networks"]}
    # What concerns a network.
    net_item_ids, net_clusters, net_cons = set(), set(), set()
    per_item = []
    for it in net_items:
        ids = item_ids(it, idx)
        net_item_ids |= ids
        net_clusters |= set(it["cluster_keys"])
        net_cons |= set(it["consignments"])
        per_item.append((it, ids))
    for n in truth["networks"]:
        for p in n["parties"]:
            net_clusters |= set(p["cluster_keys"])
        net_cons |= set(n["consignments"])
    lc = truth["legit_coastal"]
    co_ids, co_clusters, co_cons = set(), set(lc.get("dealer_cluster_keys", [])), set()
    for it in lc["items"]:
        co_ids |= item_ids(it, idx)
        co_clusters |= set(it["cluster_keys"])
        co_cons |= set(it["consignments"])
    coastal_refs = {r["source_ref"] for r in lc["records"]}

    def concerns_network(a):
        k, s = a["subject_kind"], a["subject"]
        return (k == "item" and s in net_item_ids) or (k == "cluster" and s in net_clusters) or \
               (k == "consignment" and s in net_cons)

    def concerns_coastal(a):
        k, s = a["subject_kind"], a["subject"]
        if (k == "item" and s in co_ids) or (k == "cluster" and s in co_clusters) or \
           (k == "consignment" and s in co_cons):
            return True
        return bool(evidence_refs(a.get("evidence")) & coastal_refs)

    alerts = data["alerts"]
    medium = [a for a in alerts if int(a["severity"]) >= 2]
    # Recall.
    by_subject = {}
    for a in medium:
        if a["medium_known_at"]:
            by_subject.setdefault((a["subject_kind"], a["subject"]), []).append(int(a["medium_known_at"]))
    counted = named = 0
    by_kind, by_fate = {}, {}
    missed = []
    for it, ids in per_item:
        if not it.get("warn_by"):
            continue
        deadline = iso_to_epoch(it["warn_by"])
        subjects = [("item", i) for i in ids] + [("cluster", c) for c in it["cluster_keys"]] + \
                   [("consignment", c) for c in it["consignments"]]
        ok = any(t < deadline for s in subjects for t in by_subject.get(s, []))
        counted += 1
        named += ok
        for d, k in ((by_kind, kinds.get(it["network"], "?")), (by_fate, it["fate"])):
            c = d.setdefault(k, [0, 0])
            c[0] += ok
            c[1] += 1
        if not ok:
            missed.append(it["id"])
    net_medium = [a for a in medium if concerns_network(a)]
    coastal_all = [a for a in alerts if not concerns_network(a) and concerns_coastal(a)]
    coastal_medium = [a for a in coastal_all if int(a["severity"]) >= 2]
    rules = {}
    for a in alerts:
        r = rules.setdefault(a["rule"], {"alerts": 0, "medium_or_above": 0, "network": 0, "coastal": 0})
        r["alerts"] += 1
        r["medium_or_above"] += int(a["severity"]) >= 2
        r["network"] += int(a["severity"]) >= 2 and concerns_network(a)
        r["coastal"] += (not concerns_network(a)) and concerns_coastal(a)
    mapped = sum(1 for _, ids in per_item if ids)
    return {
        "recall": named / counted if counted else None,
        "recall_counts": [named, counted],
        "precision": len(net_medium) / len(medium) if medium else None,
        "precision_counts": [len(net_medium), len(medium)],
        "coastal_alerts": len(coastal_all),
        "coastal_alerts_medium": len(coastal_medium),
        "alerts": len(alerts),
        "rules": rules,
        "recall_by_network_kind": by_kind,
        "recall_by_fate": by_fate,
        "network_items_found_in_db": [mapped, len(per_item)],
        "missed": missed[:50],
    }


def fmt(x):
    return "n/a" if x is None else "%.3f" % x


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--db", help="libpq connection string")
    ap.add_argument("--csv-dir", help="read alerts.csv and keys.csv from here instead")
    ap.add_argument("--psql", default="psql")
    ap.add_argument("--json", help="also write the figures as JSON here")
    args = ap.parse_args()
    if bool(args.db) == bool(args.csv_dir):
        ap.error("give --db or --csv-dir")
    try:
        with open(args.truth) as f:
            truth = json.load(f)
    except (OSError, ValueError) as e:
        print("alerts_score: cannot read %s: %s" % (args.truth, e), file=sys.stderr)
        return 2
    if truth.get("format") != "tidewatch-sim-truth/1":
        print("alerts_score: %s is not a tidewatch simulate truth file" % args.truth, file=sys.stderr)
        return 2
    s = score(truth, load(args))
    print("network items found in the database: %d of %d" % tuple(s["network_items_found_in_db"]))
    print("recall: %s (%d of %d network items warned of before their seizure or launch; target >= 0.9)"
          % (fmt(s["recall"]), s["recall_counts"][0], s["recall_counts"][1]))
    print("precision: %s (%d of %d alerts at medium or above concern a network; target >= 0.8)"
          % (fmt(s["precision"]), s["precision_counts"][0], s["precision_counts"][1]))
    print("alerts on legitimate coastal trade: %d (%d at medium or above)"
          % (s["coastal_alerts"], s["coastal_alerts_medium"]))
    print("alerts: %d" % s["alerts"])
    for rule in sorted(s["rules"]):
        r = s["rules"][rule]
        print("  %-18s %6d alerts, %6d medium+, %6d on networks, %6d on coastal trade"
              % (rule, r["alerts"], r["medium_or_above"], r["network"], r["coastal"]))
    for title, d in (("recall by network kind", s["recall_by_network_kind"]),
                     ("recall by fate", s["recall_by_fate"])):
        print(title + ": " + ", ".join("%s %d/%d" % (k, v[0], v[1]) for k, v in sorted(d.items())))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(s, f, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
