# Debian package of kasm-bootstrap (CPack DEB). Built from the static release binary:
#   cmake --preset static && cmake --build --preset static -j2
#   (cd build/static && cpack -G DEB)        # or scripts/build-deb.sh, which also runs
#                                             # lintian and an install/upgrade/purge test
#
# Contents:
#   /usr/bin/kasm-bootstrap                       the binary (install rule in CMakeLists.txt)
#   /lib/systemd/system/kasm-bootstrap*.{service,timer}
#   /usr/share/kasm-bootstrap/templates/[<provider>/]<generation>/startup-script.sh.tmpl,
#   /usr/share/kasm-bootstrap/templates/[<provider>/]<generation>/startup-cloud-config.yaml.tmpl
#                                                  templates for Kasm's "Startup Script" field,
#                                                  one directory per provider and Kasm
#                                                  generation, as in cloud-init/ (AWS at the
#                                                  top: docs/providers.md);
#                                                  Python str.format templates, data, not
#                                                  scripts: Kasm renders them, bash never
#                                                  sees them as shipped (hence .tmpl)
#   /usr/share/kasm-bootstrap/examples/agent.json  example configuration
#   /usr/share/man/man1/kasm-bootstrap.1.gz        man page (docs/reference/, gzip -9n here)
#   /usr/share/bash-completion/completions/kasm-bootstrap
#   /usr/share/doc/kasm-bootstrap/                 copyright, changelog.gz (packaging/),
#                                                  README, packer README, configuration.md
#   /usr/share/lintian/overrides/kasm-bootstrap    what lintian flags on purpose (packaging/)
#   /etc/logrotate.d/kasm-bootstrap                conffile: rotates <state_dir>/kasm-bootstrap.log
# Maintainer scripts (cmake/deb/): deb-systemd-helper's conventions, as dh_installsystemd
# writes them: postinst enables kasm-bootstrap.service, kasm-bootstrap-health.timer and
# kasm-bootstrap-metadata-firewall.service on first installation only (an upgrade keeps
# a unit the administrator disabled) and never starts them; prerm stops the timer on
# removal; postrm purge forgets the enablement.

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

# One directory per provider and Kasm generation, as in cloud-init/ (AWS at the top,
# kasm-1.15-1.16/ and kasm-1.17-1.18/; azure/, gcp/, oci/, digitalocean/, kubevirt/ with
# their own): Kasm renders a different set of variables up to 1.16 and from 1.17
# (cloud-init/generate.py writes them; scripts/build-deb.sh checks them).
# Renamed to .tmpl: they are str.format templates (`{{`/`}}` for braces), not runnable.
file(GLOB_RECURSE KB_TEMPLATES RELATIVE ${PROJECT_SOURCE_DIR}/cloud-init
  ${PROJECT_SOURCE_DIR}/cloud-init/*/startup-script.sh
  ${PROJECT_SOURCE_DIR}/cloud-init/*/startup-cloud-config.yaml)
foreach(template IN LISTS KB_TEMPLATES)
  get_filename_component(template_dir ${template} DIRECTORY)
  get_filename_component(template_name ${template} NAME)
  install(FILES ${PROJECT_SOURCE_DIR}/cloud-init/${template}
    DESTINATION share/kasm-bootstrap/templates/${template_dir}
    RENAME ${template_name}.tmpl
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
install(FILES ${PROJECT_SOURCE_DIR}/docs/configuration.md
  DESTINATION share/doc/kasm-bootstrap
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
  OPTIONAL)
# Machine-readable copyright (DEP-5): the project's own code and every library the static
# binary contains, with the licence names of Debian's own copyright files.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/copyright
  DESTINATION share/doc/kasm-bootstrap
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# The changelog (Debian format; a native package's is changelog.gz) and the man page,
# compressed as Debian policy wants them (gzip -9, and -n: no name or time stamp in the
# header, so the same input gives the same bytes). The changelog's newest entry must be
# this version, or lintian and dpkg-parsechangelog would disagree with the package.
set(KB_CHANGELOG "${PROJECT_SOURCE_DIR}/packaging/changelog")
set(KB_MAN_PAGE "${PROJECT_SOURCE_DIR}/docs/reference/kasm-bootstrap.1"
  CACHE FILEPATH "roff man page installed as man1/kasm-bootstrap.1.gz (scripts/gen-reference.sh)")
set(KB_BASH_COMPLETION "${PROJECT_SOURCE_DIR}/docs/reference/kasm-bootstrap.bash-completion"
  CACHE FILEPATH "bash completion installed as completions/kasm-bootstrap (scripts/gen-reference.sh)")
file(STRINGS "${KB_CHANGELOG}" kb_changelog_head LIMIT_COUNT 1)
if(NOT kb_changelog_head MATCHES "^kasm-bootstrap \\(${PROJECT_VERSION}\\) ")
  message(FATAL_ERROR "packaging/changelog: its newest entry is '${kb_changelog_head}', "
    "but the project is version ${PROJECT_VERSION}: add an entry for ${PROJECT_VERSION}")
endif()
# Compressed when installing (cpack installs first), so a package never holds a stale copy
# and no build target is needed.
set(kb_packaging_dir "${PROJECT_BINARY_DIR}/packaging")
install(CODE "set(kb_gzip_jobs [[${KB_CHANGELOG}|${kb_packaging_dir}/changelog.gz;${KB_MAN_PAGE}|${kb_packaging_dir}/kasm-bootstrap.1.gz]])")
install(CODE [[
  foreach(job IN LISTS kb_gzip_jobs)
    string(REPLACE "|" ";" job "${job}")
    list(GET job 0 source)
    list(GET job 1 output)
    get_filename_component(dir "${output}" DIRECTORY)
    file(MAKE_DIRECTORY "${dir}")
    execute_process(COMMAND gzip -9n INPUT_FILE "${source}" OUTPUT_FILE "${output}" RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "gzip -9n ${source} failed (${rc})")
    endif()
  endforeach()
]])
install(FILES "${kb_packaging_dir}/changelog.gz"
  DESTINATION share/doc/kasm-bootstrap
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES "${kb_packaging_dir}/kasm-bootstrap.1.gz"
  DESTINATION share/man/man1
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES "${KB_BASH_COMPLETION}"
  DESTINATION share/bash-completion/completions
  RENAME kasm-bootstrap
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# Rotation of <state_dir>/kasm-bootstrap.log (copytruncate: see the file). A conffile
# (cmake/deb/conffiles): an administrator's edits survive upgrades. Absolute on purpose.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/logrotate
  DESTINATION /etc/logrotate.d
  RENAME kasm-bootstrap
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# lintian's overrides for what this package does on purpose, each with its reason.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/lintian-overrides
  DESTINATION share/lintian/overrides
  RENAME kasm-bootstrap
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

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
  "Started from EC2 user-data (templates in /usr/share/kasm-bootstrap/templates),\n"
  "it detects the agent address (IMDSv2 and other metadata services), makes swap,\n"
  "downloads and verifies the Kasm release, runs the installer, installs\n"
  "certificates and checks the agent's health. One static binary, with systemd\n"
  "units.")
# Static binary: no shared library dependencies to compute, and no Depends.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
# The binary's architecture, not the building machine's (CPack would ask dpkg, which says
# amd64 in the arm64 cross build, preset static-arm64).
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
endif()
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates, cloud-init")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${PROJECT_SOURCE_DIR}/cmake/deb/postinst;${PROJECT_SOURCE_DIR}/cmake/deb/prerm;${PROJECT_SOURCE_DIR}/cmake/deb/postrm;${PROJECT_SOURCE_DIR}/cmake/deb/conffiles")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

include(CPack)
