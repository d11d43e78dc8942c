"""Prints a StreamSpace diagnostics report (JSON on stdin) in colour; exits 1 when a check failed."""
import json
import sys

MARKS = {"ok": "\033[32m ok \033[0m", "warn": "\033[33mwarn\033[0m", "fail": "\033[31mFAIL\033[0m"}

report = json.load(sys.stdin)
for check in report["checks"]:
    print(MARKS[check["status"]] + " " + check["title"] + ": " + check["evidence"])
    if check.get("fix"):
        print("       fix: " + check["fix"])
print()
print("overall: " + MARKS[report["status"]])
sys.exit(1 if report["status"] == "fail" else 0)
