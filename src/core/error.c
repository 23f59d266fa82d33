/* Error names and messages, from the one table in weft/errno.h; version queries. */
#include "internal.h"

#define WEFT__STR(x) #x
#define WEFT__XSTR(x) WEFT__STR(x)

const char *weft_strerror(int code) {
    switch (code) {
#define WEFT__ERR_MSG(name, msg) \
    case WEFT_##name:            \
        return msg;
        WEFT_ERRNO_MAP(WEFT__ERR_MSG)
#undef WEFT__ERR_MSG
    case 0:
        return "success";
    default:
        return "unknown error";
    }
}

const char *weft_err_name(int code) {
    switch (code) {
#define WEFT__ERR_NAME(name, msg) \
    case WEFT_##name:             \
        return #name;
        WEFT_ERRNO_MAP(WEFT__ERR_NAME)
#undef WEFT__ERR_NAME
    case 0:
        return "OK";
    default:
        return "UNKNOWN";
    }
}

unsigned weft_version(void) { return WEFT_VERSION_HEX; }

const char *weft_version_string(void) {
    return WEFT__XSTR(WEFT_VERSION_MAJOR) "." WEFT__XSTR(WEFT_VERSION_MINOR) "." WEFT__XSTR(
        WEFT_VERSION_PATCH);
}
