# Install rules and the Debian packages (CPack): `meshd` (daemon, systemd
# unit, default config, man page, completion) and `meshctl` (the CLI).
#   cmake -S . -B build && ninja -C build && (cd build && cpack -G DEB)
# Installed under /usr; the config under /etc/flowmesh (a conffile).

set(pkg ${PROJECT_SOURCE_DIR}/packaging)

install(TARGETS meshd RUNTIME DESTINATION sbin COMPONENT meshd)
install(FILES ${pkg}/systemd/meshd.service DESTINATION lib/systemd/system COMPONENT meshd)
install(FILES ${pkg}/meshd.toml DESTINATION /etc/flowmesh COMPONENT meshd)
# Man pages compressed as Debian installs them (gzip -9n: no name or time).
set(man_out ${PROJECT_BINARY_DIR}/man)
foreach(page meshd meshctl)
  add_custom_command(OUTPUT ${man_out}/${page}.8.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${man_out}
    COMMAND sh -c "gzip -9n -c '${pkg}/man/${page}.8' > '${man_out}/${page}.8.gz'"
    DEPENDS ${pkg}/man/${page}.8 VERBATIM)
endforeach()
add_custom_target(man_pages ALL DEPENDS ${man_out}/meshd.8.gz ${man_out}/meshctl.8.gz)

install(FILES ${man_out}/meshd.8.gz DESTINATION share/man/man8 COMPONENT meshd)
install(FILES ${pkg}/bash-completion/meshd
        DESTINATION share/bash-completion/completions COMPONENT meshd)

install(TARGETS meshctl RUNTIME DESTINATION bin COMPONENT meshctl)
install(FILES ${man_out}/meshctl.8.gz DESTINATION share/man/man8 COMPONENT meshctl)
install(FILES ${pkg}/bash-completion/meshctl
        DESTINATION share/bash-completion/completions COMPONENT meshctl)

set(CPACK_PACKAGE_NAME flowmesh)
set(CPACK_PACKAGE_VENDOR "flowmesh")
set(CPACK_PACKAGE_CONTACT "flowmesh developers <dev@flowmesh.invalid>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL meshd meshctl)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://flowmesh.invalid")

set(CPACK_DEBIAN_MESHD_PACKAGE_NAME meshd)
set(CPACK_DEBIAN_MESHD_DESCRIPTION
    "flowmesh node daemon: which processes depend on which, from TCP connections\n\
meshd traces every TCP connection on the host with eBPF tracepoints (or\n\
sock_diag polling), attributes each to a process, keeps the history as flows\n\
in an embedded RocksDB and, with a cluster key, gossips with the other hosts'\n\
meshd so that `meshctl look` walks the dependency tree across the fleet.")
set(CPACK_DEBIAN_MESHD_PACKAGE_RECOMMENDS meshctl)
set(CPACK_DEBIAN_MESHD_PACKAGE_DEPENDS passwd)
set(CPACK_DEBIAN_MESHD_PACKAGE_CONTROL_EXTRA
    ${pkg}/debian/conffiles;${pkg}/debian/postinst;${pkg}/debian/prerm;${pkg}/debian/postrm)
set(CPACK_DEBIAN_MESHD_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_MESHCTL_PACKAGE_NAME meshctl)
set(CPACK_DEBIAN_MESHCTL_DESCRIPTION
    "flowmesh command line: look, flows, endpoints, peers, keys, watch, top, status\n\
meshctl talks to the local meshd over its Unix socket; `meshctl look IP:PORT`\n\
prints the dependency tree of a service across every host running meshd.")

include(CPack)
