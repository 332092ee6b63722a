# agentd as a Debian package: `cpack -G DEB` in a build tree (dev/package does it and
# checks the result). Installs under /usr, the default config as the conffile
# /etc/agentd/agentd.yaml, the units, sysusers.d and tmpfiles.d entries for the agentd
# user and its directories, the man pages and the shell completion. Depends are computed
# from the binaries' libraries (dpkg-shlibdeps), plus libcurl4, which agentd and
# agentd-agent open at their first HTTP call (common/curl_library.h) and shlibdeps cannot see.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME agentd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "agentd maintainers <maintainers@agentd.dev>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "orchestrator for teams of LLM agents")
set(CPACK_PACKAGE_DESCRIPTION
    "agentd is an always-on daemon that runs teams of LLM agents (a CEO, a manager,\n\
coders, testers, any role in its config) as supervised processes, with a gRPC API,\n\
the agentctl command line and a web UI. Goals flow from a person to the team through\n\
plans a person approves; every state change is kept in SQLite.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser | systemd, libcurl4 (>= 7.85)")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "bubblewrap, git")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://agentd.invalid/")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/infra/debian/postinst ${CMAKE_SOURCE_DIR}/infra/debian/prerm
    ${CMAKE_SOURCE_DIR}/infra/debian/postrm ${CMAKE_SOURCE_DIR}/infra/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)

# Debian's documentation files: the copyright and a changelog, compressed as policy asks.
set(AGENTD_VERSION ${PROJECT_VERSION})
configure_file(${CMAKE_SOURCE_DIR}/infra/debian/changelog ${CMAKE_BINARY_DIR}/debian/changelog.Debian
               @ONLY)
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/debian/changelog.Debian.gz
  COMMAND gzip -9 -n -c ${CMAKE_BINARY_DIR}/debian/changelog.Debian > ${CMAKE_BINARY_DIR}/debian/changelog.Debian.gz
  DEPENDS ${CMAKE_BINARY_DIR}/debian/changelog.Debian VERBATIM)
add_custom_target(agentd_debian_docs ALL DEPENDS ${CMAKE_BINARY_DIR}/debian/changelog.Debian.gz)
install(FILES ${CMAKE_SOURCE_DIR}/infra/debian/copyright
              ${CMAKE_BINARY_DIR}/debian/changelog.Debian.gz
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
include(CPack)
