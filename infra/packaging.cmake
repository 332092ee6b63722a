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
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# Two packages: agentd (everything installed without a component: the daemon, its
# tools, the web UI) and, when the desktop shell is built, agentd-desktop (component
# `desktop`: the GTK/WebKitGTK window, its .desktop file and icon), so that a server
# installs no GUI libraries. The maintainer scripts (the agentd user, the units) and the
# conffile are agentd's alone.
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_UNSPECIFIED_PACKAGE_NAME agentd)
set(CPACK_DEBIAN_UNSPECIFIED_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/infra/debian/postinst ${CMAKE_SOURCE_DIR}/infra/debian/prerm
    ${CMAKE_SOURCE_DIR}/infra/debian/postrm ${CMAKE_SOURCE_DIR}/infra/debian/conffiles)
set(CPACK_DEBIAN_DESKTOP_PACKAGE_NAME agentd-desktop)
set(CPACK_DEBIAN_DESKTOP_PACKAGE_SECTION x11)
set(CPACK_DEBIAN_DESKTOP_PACKAGE_DEPENDS "agentd (= ${PROJECT_VERSION})")
set(CPACK_DEBIAN_DESKTOP_PACKAGE_RECOMMENDS "")
set(CPACK_DEBIAN_UNSPECIFIED_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_DEBIAN_DESKTOP_DESCRIPTION
    "This package holds agentd-desktop: agentd's web UI in a desktop window\n\
(GTK 3, WebKitGTK). It finds the user's agentd and starts it when none runs\n\
(through systemd's user unit when installed), stops it on request, logs in\n\
without a token in any URL, and raises a desktop notification for each consent\n\
request and each plan awaiting approval.")
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
if(AGENTD_HAVE_DESKTOP)
  install(FILES ${CMAKE_SOURCE_DIR}/infra/debian/copyright
                ${CMAKE_BINARY_DIR}/debian/changelog.Debian.gz
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/agentd-desktop COMPONENT desktop)
endif()
include(CPack)
