# test_pgcluster: keysvc/pgcluster.c against the installed PostgreSQL (initdb,
# pg_ctl from the postgresql package).  Creates and removes its own cluster in
# a temporary directory under /tmp; as root the server runs as user
# "postgres", so no fixture is needed and it can run in parallel with others.
add_executable(test_pgcluster
  ${PROJECT_SOURCE_DIR}/tests/integration/test_pgcluster.c
  ${PROJECT_SOURCE_DIR}/keysvc/pgcluster.c)
target_include_directories(test_pgcluster PRIVATE
  ${PROJECT_SOURCE_DIR}/keysvc
  ${PROJECT_SOURCE_DIR}/common)
target_link_libraries(test_pgcluster PRIVATE ks_common PkgConfig::PQ)
add_test(NAME pgcluster COMMAND test_pgcluster)
# A fresh cluster (initdb, durable) takes about 1.5 s; the whole test about 2 s.
set_tests_properties(pgcluster PROPERTIES TIMEOUT 120 LABELS integration)
