#!/usr/bin/python3
"""Drive a BMC with Debian's python3-sushy (an independent Redfish client), the way Ironic does:
insert virtual media, set a one-time boot from CD, power on (or restart), wait, eject, and print
what sushy read back at each step as one JSON document on stdout.

usage: sushy_drive.py BASE_URL USERNAME PASSWORD IMAGE_URL
"""
import json
import sys
import time
import urllib.parse

import sushy


def main():
    base, username, password, image = sys.argv[1:5]
    observed = {}
    # a path-prefix BMC (http://host:port/bmc/<id>) goes in sushy's root_prefix
    parts = urllib.parse.urlsplit(base)
    root_prefix = parts.path.rstrip('/') + '/redfish/v1/'
    conn = sushy.Sushy(f'{parts.scheme}://{parts.netloc}', username=username, password=password,
                       root_prefix=root_prefix, verify=False)
    observed['redfish_version'] = conn.redfish_version
    systems = conn.get_system_collection().get_members()
    observed['systems'] = [s.identity for s in systems]
    # the DPU system, else the only one
    dpu = next((s for s in systems if s.system_type is not None and s.system_type.value == 'DPU'), systems[0])
    observed['system'] = dpu.identity
    manager = dpu.managers[0]
    observed['manager'] = manager.identity
    cd = next(v for v in manager.virtual_media.get_members() if any(t.value in ('CD', 'DVD') for t in v.media_types))
    observed['slot'] = cd.identity
    if cd.inserted:
        cd.eject_media()
    cd.insert_media(image, inserted=True, write_protected=True)
    cd.refresh()
    observed['after_insert'] = {'image': cd.image, 'inserted': cd.inserted}

    observed['allowed_boot'] = sorted(v.value for v in dpu.get_allowed_system_boot_source_values())
    dpu.set_system_boot_options(target=sushy.BootSource.CD, enabled=sushy.BootSourceOverrideEnabled.ONCE,
                                mode=sushy.BootSourceOverrideMode.UEFI)
    dpu.refresh()
    observed['after_boot_override'] = {
        'target': dpu.boot.target.value, 'enabled': dpu.boot.enabled.value, 'mode': dpu.boot.mode.value}

    observed['power_before'] = dpu.power_state.value
    reset = sushy.ResetType.ON if dpu.power_state == sushy.PowerState.OFF else sushy.ResetType.FORCE_RESTART
    observed['reset'] = reset.value
    dpu.reset_system(reset)
    deadline = time.time() + 20
    while True:
        dpu.refresh()
        if dpu.power_state == sushy.PowerState.ON or time.time() > deadline:
            break
        time.sleep(0.1)
    observed['after_reset'] = {'power': dpu.power_state.value, 'enabled': dpu.boot.enabled.value}

    cd.eject_media()
    cd.refresh()
    observed['after_eject'] = {'image': cd.image, 'inserted': cd.inserted}
    print(json.dumps(observed))


if __name__ == '__main__':
    main()
