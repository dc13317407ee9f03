# Debian package of kasm-bootstrap (CPack DEB). Built from the static release binary:
#   cmake --preset static && cmake --build --preset static -j2
#   (cd build/static && cpack -G DEB)        # or scripts/build-deb.sh
#
# Contents:
#   /usr/bin/kasm-bootstrap                       the binary (install rule in CMakeLists.txt)
#   /lib/systemd/system/kasm-bootstrap*.{service,timer}
#   /usr/share/kasm-bootstrap/<generation>/startup-script.sh, startup-cloud-config.yaml
#                                                  templates for Kasm's "Startup Script" field,
#                                                  one directory per Kasm generation
#                                                  (kasm-1.15-1.16, kasm-1.17-1.18: cloud-init/)
#   /usr/share/kasm-bootstrap/examples/agent.json  example configuration
#   /usr/share/doc/kasm-bootstrap/                 README, packer README
# postinst enables kasm-bootstrap.service, kasm-bootstrap-health.timer and
# kasm-bootstrap-metadata-firewall.service (it never starts them); prerm disables them on removal.

# Debian places system units in /lib/systemd/system (the same directory as
# /usr/lib/systemd/system on merged-/usr systems such as Ubuntu 20.04+). Absolute on
# purpose; override for a `cmake --install` into a private prefix.
set(KB_SYSTEMD_UNIT_DIR "/lib/systemd/system" CACHE STRING "Where the systemd units are installed")

install(FILES
  ${PROJECT_SOURCE_DIR}/systemd/kasm-bootstrap.service
  ${PROJECT_SOURCE_DIR}/systemd/kasm-bootstrap-health.service
  ${PROJECT_SOURCE_DIR}/systemd/kasm-bootstrap-health.timer
  ${PROJECT_SOURCE_DIR}/systemd/kasm-bootstrap-metadata-firewall.service
  DESTINATION ${KB_SYSTEMD_UNIT_DIR}
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# One directory per Kasm generation: Kasm renders a different set of variables up to
# 1.16 and from 1.17 (cloud-init/generate.py writes them; scripts/build-deb.sh checks them).
foreach(generation IN ITEMS kasm-1.15-1.16 kasm-1.17-1.18)
  install(FILES
    ${PROJECT_SOURCE_DIR}/cloud-init/${generation}/startup-script.sh
    ${PROJECT_SOURCE_DIR}/cloud-init/${generation}/startup-cloud-config.yaml
    DESTINATION share/kasm-bootstrap/${generation}
    PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endforeach()

install(FILES ${PROJECT_SOURCE_DIR}/examples/agent.json
  DESTINATION share/kasm-bootstrap/examples
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
  OPTIONAL)

install(FILES ${PROJECT_SOURCE_DIR}/README.md
  DESTINATION share/doc/kasm-bootstrap
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
  OPTIONAL)
install(FILES ${PROJECT_SOURCE_DIR}/packer/README.md
  DESTINATION share/doc/kasm-bootstrap
  RENAME README.packer.md
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
  OPTIONAL)

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "kasm-bootstrap")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "kasm-bootstrap")
set(CPACK_PACKAGE_CONTACT "kasm-bootstrap maintainers <kasm-bootstrap@example.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "turns a VM into a registered Kasm Workspaces Docker Agent")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_PACKAGE_NAME "kasm-bootstrap")
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT") # kasm-bootstrap_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_RELEASE "")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# The long description, one string (separate arguments would become a ;-list); CPack
# puts CPACK_PACKAGE_DESCRIPTION_SUMMARY in front as the synopsis.
string(CONCAT CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "kasm-bootstrap replaces the bash startup script of Kasm Workspaces autoscaling.\n"
  "Started from EC2 user-data (templates in /usr/share/kasm-bootstrap), it detects the\n"
  "agent address (IMDSv2 and other metadata services), makes swap, downloads and\n"
  "verifies the Kasm release, runs the installer, installs certificates and checks\n"
  "the agent's health. One static binary, with systemd units.")
# Static binary: no shared library dependencies to compute, and no Depends.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates, cloud-init")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${PROJECT_SOURCE_DIR}/cmake/deb/postinst;${PROJECT_SOURCE_DIR}/cmake/deb/prerm;${PROJECT_SOURCE_DIR}/cmake/deb/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

include(CPack)
