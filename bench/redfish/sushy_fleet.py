#!/usr/bin/python3
"""Benchmark peer: python3-sushy drives many BMCs one after another in one process, each through
insert -> boot once -> reset (On) -> wait for On -> eject, and prints the per-BMC durations.

stdin: JSON list of {"url", "username", "password"}; argv[1]: the image URL.
stdout: {"durations_ms": [...]}
"""
import json
import sys
import time

import sushy


def boot(endpoint, image):
    conn = sushy.Sushy(endpoint['url'] + '/redfish/v1', username=endpoint['username'],
                       password=endpoint['password'], verify=False)
    system = conn.get_system_collection().get_members()[0]
    manager = system.managers[0]
    cd = next(v for v in manager.virtual_media.get_members()
              if any(t.value in ('CD', 'DVD') for t in v.media_types))
    if cd.inserted:
        cd.eject_media()
    cd.insert_media(image, inserted=True, write_protected=True)
    system.set_system_boot_options(target=sushy.BootSource.CD,
                                   enabled=sushy.BootSourceOverrideEnabled.ONCE,
                                   mode=sushy.BootSourceOverrideMode.UEFI)
    system.reset_system(sushy.ResetType.ON)
    while True:
        system.refresh()
        if system.power_state == sushy.PowerState.ON:
            break
        time.sleep(0.02)
    cd.eject_media()


def main():
    endpoints = json.load(sys.stdin)
    image = sys.argv[1]
    durations = []
    for endpoint in endpoints:
        t0 = time.perf_counter()
        boot(endpoint, image)
        durations.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({'durations_ms': durations}))


if __name__ == '__main__':
    main()
