# The native helpers, built by `npm run build` into build/Release/ (N-API; no npm dependencies):
#   abstract_socket.node  Linux abstract Unix sockets bound with their exact length (native/abstract_socket.c)
#   aead.node             AES-256-GCM seal/open in one call, on the OpenSSL inside node (native/aead.c)
{
  "targets": [
    {
      "target_name": "abstract_socket",
      "sources": ["native/abstract_socket.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "aead",
      "sources": ["native/aead.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
