"""
ScriptsManager Metadata:
@description: Prints numbered lines at a steady pace (replica and streaming tests)
@required_level: operator
@category: tests
"""

import os
import sys
import time

count = int(os.environ.get("SM_COUNTER_LINES", "400"))
for number in range(1, count + 1):
    print(f"line {number}", flush=True)
    time.sleep(0.01)
print("done", file=sys.stderr, flush=True)
