// A stand-in for ComfyUI's frontend (the `app` and `api` the extension imports), for extension.test.mjs.
export const extensions = [];
export const requests = [];
export const routes = {};

export const app = {
  graph: null,
  canvas: { setDirty() {} },
  registerExtension(extension) {
    extensions.push(extension);
  },
};

export const api = {
  async fetchApi(route, init = {}) {
    requests.push({ route, method: init.method ?? "GET", body: init.body });
    const handler = routes[`${init.method ?? "GET"} ${route}`];
    if (!handler) return { ok: false, status: 404, json: async () => ({}) };
    const [status, body] = handler(init);
    return { ok: status < 400, status, json: async () => body };
  },
};
