/* Schema migrations embedded at build time from schema/NNN_name.sql. */
#ifndef STORE_MIGRATIONS_H
#define STORE_MIGRATIONS_H

typedef struct store_migration {
    int version;
    const char *name;
    const char *sql;
} store_migration;

extern const store_migration store_migrations[];
extern const unsigned store_migration_count;

#endif
