// Starts GraphiQL from the page's JSON config block: no inline script, so the page's CSP can
// allow scripts from the gateway's own origin only.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("graphiql-config").textContent);

  // localStorage under our own namespace (another GraphiQL on this origin keeps its own tabs),
  // with header values blanked unless persisting them is allowed: GraphiQL's shouldPersistHeaders
  // covers the editor and tabs, but its history plugin stores each run's headers regardless.
  function storage(namespace, persistHeaders) {
    const prefix = namespace + ":";
    const withoutHeaders = (key, value) => (key === "headers" && value ? null : value);
    function scrub(key, value) {
      if (persistHeaders) return value;
      const name = key.slice(key.lastIndexOf(":") + 1);
      if (name === "headers") return null;
      // Tabs, history and favorites are JSON lists of {query, variables, headers, ...}.
      if (!["tabState", "queries", "favorites"].includes(name)) return value;
      try {
        return JSON.stringify(JSON.parse(value), withoutHeaders);
      } catch (error) {
        return null; // unreadable: better lost than stored with a token in it
      }
    }
    function ownKeys() {
      return Object.keys(localStorage).filter((key) => key.startsWith(prefix));
    }
    return {
      getItem: (key) => localStorage.getItem(prefix + key),
      setItem(key, value) {
        const kept = scrub(key, value);
        if (kept === null) localStorage.removeItem(prefix + key);
        else localStorage.setItem(prefix + key, kept);
      },
      removeItem: (key) => localStorage.removeItem(prefix + key),
      get length() {
        return ownKeys().length;
      },
      clear() {
        ownKeys().forEach((key) => localStorage.removeItem(key));
      },
    };
  }

  // The page is served by the GraphQL endpoint itself, so operations go to the same URL.
  const url = window.location.origin + window.location.pathname;
  const props = {
    fetcher: GraphiQL.createFetcher({ url: url }),
    plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    // defaultQuery fills the first tab only: later visits restore the developer's own tabs.
    defaultQuery: config.query,
    defaultHeaders: config.headers || undefined,
    shouldPersistHeaders: config.shouldPersistHeaders,
    isHeadersEditorEnabled: true,
    defaultEditorToolsVisibility: config.headers ? "headers" : true,
    inputValueDeprecation: true,
    storage: storage(config.storageNamespace, config.shouldPersistHeaders),
  };
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, props));
})();
