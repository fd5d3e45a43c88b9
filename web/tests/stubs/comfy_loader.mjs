// Module hook for extension.test.mjs: ComfyUI's scripts/app.js and scripts/api.js become ./comfy.mjs.
export async function resolve(specifier, context, nextResolve) {
  if (/\/scripts\/(app|api)\.js$/.test(specifier)) {
    return { url: new URL("./comfy.mjs", import.meta.url).href, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
