"""Several clients at once: every request is answered and the end state is consistent."""

from __future__ import annotations

import threading

from .conftest import Api

CLIENTS = 8
ROUNDS = 15


def test_concurrent_clients_each_see_their_own_changes(toxiproxy_url: str) -> None:
    errors: list[str] = []

    def worker(index: int) -> None:
        api = Api(toxiproxy_url)
        try:
            for round_ in range(ROUNDS):
                proxy = api.create("127.0.0.1:9", label=f"w{index}r{round_}")
                name = proxy["name"]
                toxic = api.call(
                    "POST",
                    f"/proxies/{name}/toxics",
                    {"type": "latency", "attributes": {"latency": round_}},
                )
                if toxic.status_code != 200:
                    errors.append(f"{name}: add toxic -> {toxic.status_code} {toxic.text}")
                    continue
                shown = api.call("GET", f"/proxies/{name}").json()
                if shown["toxics"][0]["attributes"]["latency"] != round_:
                    errors.append(f"{name}: saw {shown}")
                if api.call("DELETE", f"/proxies/{name}").status_code != 204:
                    errors.append(f"{name}: delete failed")
        except Exception as exc:  # reported below, with the others
            errors.append(repr(exc))
        finally:
            api.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors[:5]
    assert not any(t.is_alive() for t in threads)
