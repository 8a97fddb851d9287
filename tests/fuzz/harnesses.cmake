# The harnesses: <name>_fuzz.cc here, seeds in corpus/<name>/, and fuzz.<name>
# in the main build's ctest (tests/CMakeLists.txt). A new harness: its name
# here, the sources it reaches in CMakeLists.txt and its seeds in make_seeds.cc.
set(FLOWMESH_FUZZ_HARNESSES
  mesh_stream    # mesh frame header and seal layer, both directions
  mesh_gossip    # mesh packets, exchanges and table sync through a MeshNode
  query_wire     # look queries and answers between nodes
  control_frame  # control socket frames, requests (meshd) and responses (meshctl)
  sock_diag      # netlink sock_diag dump datagrams
  config_file    # meshd.toml, through ParseDaemonArgs
  metrics_http   # the metrics endpoint's HTTP request heads
  conntrack      # nfnetlink_conntrack events and dump replies (node/nat)
  cgroup_path    # cgroup v2 paths -> workloads (node/proc/cgroup_path.cc)
)
