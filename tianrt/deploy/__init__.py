"""Deploying on Raspberry Pi-class boards (docs/deploy.md): what the machine is and what a
graph costs on it (``tianrt doctor``), and running a model as a service (``tianrt serve``)."""
