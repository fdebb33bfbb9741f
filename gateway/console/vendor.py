"""The JavaScript and CSS libraries the console serves at `/vendor/{name}`: public name -> path under
tools/console/node_modules, installed from the lockfile by `make setup` (never a CDN)."""

VENDOR_FILES: dict[str, str] = {
    "uplot.iife.min.js": "uplot/dist/uPlot.iife.min.js",
    "uPlot.min.css": "uplot/dist/uPlot.min.css",
    "cytoscape.min.js": "cytoscape/dist/cytoscape.min.js",
}
