/*
 * Linux abstract Unix sockets bound with their exact length.
 *
 * Node 20's net module (libuv uv_pipe_bind/uv_pipe_connect) pads an abstract name to the full
 * 108-byte sun_path, so "\0name" becomes "\0name\0\0\0...". Go (kube-apiserver) dials "@name" as
 * the exact-length address, and the two never meet. This addon does the socket(), bind()/connect()
 * and listen() calls itself with addrlen = offsetof(sun_path) + 1 + strlen(name), and hands the
 * file descriptor back to JavaScript, where net.Server/net.Socket take it over with { fd }.
 *
 *   listen(name: string, backlog: number): number   a listening SOCK_STREAM fd
 *   connect(name: string): number                   a connected SOCK_STREAM fd (non-blocking)
 *
 * Failures throw an Error whose `code` is the errno name (EADDRINUSE, ECONNREFUSED, ...) and whose
 * `errno` is the positive errno value. Only N-API (node_api.h) is used, so the binary works with
 * every Node release that has N-API version 8.
 */
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* sun_path minus the leading NUL that marks the abstract namespace. */
#define MAX_NAME (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

static const char *errno_name(int err) {
  switch (err) {
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EAGAIN: return "EAGAIN";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EINTR: return "EINTR";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return NULL;
  }
}

/* Throws Error("<syscall> @<name>: <CODE>: <strerror>") with .code, .errno and .syscall set. */
static void throw_errno(napi_env env, int err, const char *syscall, const char *name) {
  const char *code = errno_name(err);
  char msg[256];
  snprintf(msg, sizeof msg, "%s @%s: %s%s%s", syscall, name, code ? code : "", code ? ": " : "", strerror(err));
  napi_value message, error, value;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok) return;
  if (napi_create_error(env, NULL, message, &error) != napi_ok) return;
  if (code && napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &value) == napi_ok) {
    napi_set_named_property(env, error, "code", value);
  }
  if (napi_create_int32(env, err, &value) == napi_ok) napi_set_named_property(env, error, "errno", value);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value) == napi_ok) {
    napi_set_named_property(env, error, "syscall", value);
  }
  napi_throw(env, error);
}

/*
 * Reads `arg` as a non-empty abstract name (no NUL, at most MAX_NAME bytes) into `out`
 * and fills `addr`/`len`. Returns 0, or -1 with a JS exception pending.
 */
static int read_address(napi_env env, napi_value arg, char out[MAX_NAME + 1], struct sockaddr_un *addr, socklen_t *len) {
  napi_valuetype type;
  size_t n = 0;
  if (napi_typeof(env, arg, &type) != napi_ok || type != napi_string) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the abstract socket name must be a string");
    return -1;
  }
  /* Measure first, so an over-long name is refused rather than silently truncated. */
  if (napi_get_value_string_utf8(env, arg, NULL, 0, &n) != napi_ok) {
    napi_throw_error(env, NULL, "cannot read the abstract socket name");
    return -1;
  }
  if (n == 0 || n > MAX_NAME) {
    napi_throw_range_error(env, "ERR_INVALID_ARG_VALUE", "the abstract socket name must be 1-107 bytes without NUL");
    return -1;
  }
  if (napi_get_value_string_utf8(env, arg, out, MAX_NAME + 1, &n) != napi_ok) {
    napi_throw_error(env, NULL, "cannot read the abstract socket name");
    return -1;
  }
  if (strlen(out) != n) {
    napi_throw_range_error(env, "ERR_INVALID_ARG_VALUE", "the abstract socket name must be 1-107 bytes without NUL");
    return -1;
  }
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  addr->sun_path[0] = '\0';
  memcpy(addr->sun_path + 1, out, n);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
  return 0;
}

static napi_value make_fd(napi_env env, int fd) {
  napi_value result;
  if (napi_create_int32(env, fd, &result) != napi_ok) {
    close(fd);
    napi_throw_error(env, NULL, "cannot return the socket descriptor");
    return NULL;
  }
  return result;
}

static napi_value js_listen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char name[MAX_NAME + 1];
  struct sockaddr_un addr;
  socklen_t len;
  int32_t backlog = 511;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "listen(name, backlog): name is required");
    return NULL;
  }
  if (read_address(env, argv[0], name, &addr, &len) != 0) return NULL;
  if (argc >= 2) {
    napi_valuetype type;
    if (napi_typeof(env, argv[1], &type) == napi_ok && type == napi_number) napi_get_value_int32(env, argv[1], &backlog);
    if (backlog < 1) backlog = 511;
  }

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket", name);
    return NULL;
  }
  if (bind(fd, (struct sockaddr *)&addr, len) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "bind", name);
    return NULL;
  }
  if (listen(fd, backlog) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "listen", name);
    return NULL;
  }
  return make_fd(env, fd);
}

static napi_value js_connect(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char name[MAX_NAME + 1];
  struct sockaddr_un addr;
  socklen_t len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "connect(name): name is required");
    return NULL;
  }
  if (read_address(env, argv[0], name, &addr, &len) != 0) return NULL;

  /* Non-blocking: a Unix stream connect either completes at once or fails (EAGAIN when the
   * listener's backlog is full); it must never block the event loop. */
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket", name);
    return NULL;
  }
  int rc;
  do {
    rc = connect(fd, (struct sockaddr *)&addr, len);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "connect", name);
    return NULL;
  }
  return make_fd(env, fd);
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor props[] = {
      {"listen", NULL, js_listen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"connect", NULL, js_connect, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
