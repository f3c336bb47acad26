/* Entry point for hosts other than Python's sqlite3 module (the sqlite3 shell's .load). */

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_extension_init(sqlite3 *db, char **error, const sqlite3_api_routines *api) {
    (void)db;
    if (api->mprintf) {
        *error = api->mprintf("sqlite-ml: this build cannot be loaded into a host program yet; "
                              "use it from Python (sqlite_ml.register(conn))");
    }
    return SQLITE_ERROR;
}
