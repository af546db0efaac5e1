# The native helper for Linux abstract Unix sockets (native/abstract_socket.c), built by
# `npm run build` into build/Release/abstract_socket.node. N-API only: no npm dependencies.
{
  "targets": [
    {
      "target_name": "abstract_socket",
      "sources": ["native/abstract_socket.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
