/* weft error codes: each WEFT_E* equals -errno on Linux, so a weft call's return value can be
 * compared with either. One X-macro table feeds the enum, weft_strerror() and weft_err_name(). */
#ifndef WEFT_ERRNO_H
#define WEFT_ERRNO_H

#include <errno.h>

#define WEFT_ERRNO_MAP(XX)                                                   \
    XX(EPERM, "operation not permitted")                                     \
    XX(ENOENT, "no such file or directory")                                  \
    XX(EINTR, "interrupted system call")                                     \
    XX(EIO, "i/o error")                                                     \
    XX(EBADF, "bad file descriptor")                                         \
    XX(EAGAIN, "resource temporarily unavailable")                           \
    XX(ENOMEM, "not enough memory")                                          \
    XX(EACCES, "permission denied")                                          \
    XX(EFAULT, "bad address")                                                \
    XX(EBUSY, "resource busy or locked")                                     \
    XX(EEXIST, "already exists")                                             \
    XX(EINVAL, "invalid argument")                                           \
    XX(EMFILE, "too many open files")                                        \
    XX(ENOSPC, "no space left on device")                                    \
    XX(EPIPE, "broken pipe")                                                 \
    XX(EDOM, "argument out of domain")                                       \
    XX(ERANGE, "result out of range")                                        \
    XX(EDEADLK, "resource deadlock avoided")                                 \
    XX(ENOSYS, "function not implemented")                                   \
    XX(ENOTSUP, "operation not supported")                                   \
    XX(EOVERFLOW, "value too large")                                         \
    XX(EPROTO, "protocol error")                                             \
    XX(ENOTCONN, "socket is not connected")                                  \
    XX(ESHUTDOWN, "cannot send after shutdown")                              \
    XX(ETIMEDOUT, "timed out")                                               \
    XX(ECONNREFUSED, "connection refused")                                   \
    XX(ECONNRESET, "connection reset by peer")                               \
    XX(EALREADY, "already done")                                             \
    XX(EINPROGRESS, "operation in progress")                                 \
    XX(ECANCELED, "cancelled")                                               \
    XX(ENOTRECOVERABLE, "state not recoverable")                             \
    XX(ENXIO, "no such device or address")                                   \
    XX(ENAMETOOLONG, "name too long")                                        \
    XX(ENODATA, "no data available")                                         \
    XX(ENOTSOCK, "not a socket")                                             \
    XX(EMSGSIZE, "message too long")                                         \
    XX(EAFNOSUPPORT, "address family not supported")                         \
    XX(EADDRINUSE, "address already in use")                                 \
    XX(EADDRNOTAVAIL, "address not available")                               \
    XX(ENETUNREACH, "network is unreachable")                                \
    XX(ECONNABORTED, "connection aborted")                                   \
    XX(ENOBUFS, "no buffer space available")                                 \
    XX(EISCONN, "socket is already connected")                               \
    XX(EHOSTUNREACH, "host is unreachable")                                  \
    XX(ENFILE, "file table overflow")                                        \
    XX(EKEYREJECTED, "certificate rejected")                                 \
    XX(ESRCH, "no such process")                                             \
    XX(ECHILD, "no child processes")                                         \
    XX(E2BIG, "argument list too long")                                      \
    XX(ENOEXEC, "exec format error")                                         \
    XX(ENOTDIR, "not a directory")                                           \
    XX(EISDIR, "is a directory")                                             \
    XX(ETXTBSY, "text file is busy")                                         \
    XX(EFBIG, "file too large")                                              \
    XX(ESPIPE, "invalid seek")                                               \
    XX(EROFS, "read-only file system")                                       \
    XX(EXDEV, "cross-device link")                                           \
    XX(ELOOP, "too many symbolic links encountered")                         \
    XX(ENOTEMPTY, "directory not empty")

enum weft_errno {
#define WEFT__ERR_ENUM(name, msg) WEFT_##name = -name,
    WEFT_ERRNO_MAP(WEFT__ERR_ENUM)
#undef WEFT__ERR_ENUM
};

#endif
