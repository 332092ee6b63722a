# AGENTD_STATIC_DEPS: link gRPC, Protocol Buffers, Abseil, upb, c-ares and gRPC's helper
# libraries from Debian's static archives (they ship beside the shared objects) instead of
# ~80 shared objects. agentd starts one agentd-agent per agent, and agentctl runs once
# per command: with the shared objects, each start spent about half of its user time in
# the dynamic loader (symbol lookups and relocations across those objects) and kept
# ~5 MB more resident. What this gives up: a Debian security update of those libraries
# reaches agentd only when agentd is rebuilt (as for any statically linked program).
# libc, libstdc++, libcurl, OpenSSL, SQLite, RE2 (a pkg-config target), spdlog, yaml-cpp,
# systemd and Nettle stay shared; none of them links the libraries linked in here.
#
# In effect for Release builds without sanitizers, coverage or fuzzing, when every archive
# is there (worked out at each configure: a tree reconfigured for a sanitizer drops it);
# -DAGENTD_STATIC_DEPS=OFF turns it off. AGENTD_STATIC_DEPS_IN_USE records the outcome
# (tests/package_test.sh reads it).
option(AGENTD_STATIC_DEPS "Link gRPC, protobuf, Abseil and c-ares statically in Release builds"
       ON)
set(_agentd_static OFF)
if(AGENTD_STATIC_DEPS AND CMAKE_BUILD_TYPE STREQUAL "Release" AND NOT AGENTD_SANITIZE
   AND NOT AGENTD_COVERAGE AND NOT AGENTD_FUZZ AND NOT BUILD_SHARED_LIBS)
  set(_agentd_static ON)
endif()

if(_agentd_static)
  get_property(_agentd_imported DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  set(_agentd_swaps "")
  set(_agentd_missing "")
  foreach(_t IN LISTS _agentd_imported)
    if(NOT _t MATCHES "^(absl::|gRPC::|protobuf::libprotobuf$|re2::re2$|c-ares::cares$)")
      continue()
    endif()
    get_target_property(_type ${_t} TYPE)
    if(NOT _type MATCHES "^(SHARED|UNKNOWN)_LIBRARY$")
      continue()
    endif()
    foreach(_prop IMPORTED_LOCATION IMPORTED_LOCATION_NONE IMPORTED_LOCATION_NOCONFIG
                  IMPORTED_LOCATION_RELEASE IMPORTED_LOCATION_DEBUG)
      get_target_property(_loc ${_t} ${_prop})
      if(NOT _loc)
        continue()
      endif()
      string(REGEX REPLACE "\\.so(\\.[0-9]+)*$" ".a" _archive "${_loc}")
      if(EXISTS "${_archive}")
        list(APPEND _agentd_swaps "${_t}|${_prop}|${_archive}")
      else()
        list(APPEND _agentd_missing "${_archive}")
      endif()
    endforeach()
  endforeach()
  if(_agentd_missing)
    list(REMOVE_DUPLICATES _agentd_missing)
    message(STATUS "AGENTD_STATIC_DEPS: no static archive for ${_agentd_missing}: "
                   "linking the shared objects")
    set(_agentd_static OFF)
  else()
    foreach(_swap IN LISTS _agentd_swaps)
      string(REPLACE "|" ";" _parts "${_swap}")
      list(GET _parts 0 _t)
      list(GET _parts 1 _prop)
      list(GET _parts 2 _archive)
      set_target_properties(${_t} PROPERTIES ${_prop} "${_archive}")
      set_property(TARGET ${_t} PROPERTY IMPORTED_NO_SONAME TRUE)
    endforeach()
    # The archives depend on one another in cycles CMake cannot see (it takes them for
    # shared objects): executables link their libraries as one group.
    set(CMAKE_CXX_LINK_EXECUTABLE
        "<CMAKE_CXX_COMPILER> <FLAGS> <CMAKE_CXX_LINK_FLAGS> <LINK_FLAGS> <OBJECTS> -o <TARGET> -Wl,--start-group <LINK_LIBRARIES> -Wl,--end-group")
    list(LENGTH _agentd_swaps _n)
    message(STATUS "AGENTD_STATIC_DEPS: ${_n} libraries linked from their static archives")
  endif()
endif()
set(AGENTD_STATIC_DEPS_IN_USE ${_agentd_static} CACHE INTERNAL "")
