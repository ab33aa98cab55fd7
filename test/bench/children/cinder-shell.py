# Runs python-cinderclient's shell -- cinderclient.shell.OpenStackCinderShell().main, what the
# `cinder` command runs -- several times in one interpreter, for test/bench/cinder-listings.ts:
# the interpreter and its imports start once, so their start-up (0.4-1.3 s on a loaded machine)
# stays out of the timings. The client's page requests are counted and timed by wrapping its
# request method. argv[1]: JSON {"common": [args], "runs": [{"args": [args], "out": path or null}]}.
# Prints one JSON line per run: {"ms": wall, "pages": GETs of /volumes, "http_ms": their time};
# a run's table goes to its "out" file.
import contextlib
import io
import json
import sys
import time

from cinderclient import client as cinder_client
from cinderclient import shell

requests = []


def counted(request):
    def wrapper(self, url, method, *args, **kwargs):
        started = time.perf_counter()
        try:
            return request(self, url, method, *args, **kwargs)
        finally:
            if method == 'GET' and '/volumes' in url:
                requests.append(time.perf_counter() - started)
    return wrapper


for cls in (cinder_client.SessionClient, cinder_client.HTTPClient):
    cls.request = counted(cls.request)

plan = json.loads(sys.argv[1])
for run in plan['runs']:
    requests.clear()
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        shell.OpenStackCinderShell().main(plan['common'] + run['args'])
    elapsed = time.perf_counter() - started
    if run.get('out'):
        with open(run['out'], 'w') as f:
            f.write(out.getvalue())
    print(json.dumps({'ms': elapsed * 1000, 'pages': len(requests), 'http_ms': sum(requests) * 1000}), flush=True)
