# keysvc through tests/rig/fault-proxy.py, a fault-injecting TLS proxy in
# front of the main rig's pebble; the script starts and stops the proxy
# itself.  Natively about 15 s; its valgrind twin scales its time bounds.
keysvc_rig_test(e2e_faults e2e_faults.sh rig_main ${RIG_MAIN})
