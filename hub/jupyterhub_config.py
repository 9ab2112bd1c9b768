"""JupyterHub configuration of the course hub (`make hub`, mfml_grader/hub.py).

Its values come from the settings file that `python -m mfml_grader hub` writes into the hub's state
folder (MFML_HUB_SETTINGS): ports, users, the virtualenv, the exchange and the course directory.
"""

import json
import os

c = get_config()  # noqa: F821 - provided by JupyterHub

with open(os.environ["MFML_HUB_SETTINGS"]) as settings_file:
    s = json.load(settings_file)
hub_dir, venv = s["hub_dir"], s["venv"]
path = f"{venv}/bin:/usr/local/bin:/usr/bin:/bin"

# Loopback only: the public port, the hub's own API and the proxy's API, each a free port.
c.JupyterHub.bind_url = f"http://127.0.0.1:{s['port']}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{s['hub_api_port']}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s['proxy_api_port']}"
c.ConfigurableHTTPProxy.command = [s["proxy"]]
c.ConfigurableHTTPProxy.pid_file = os.path.join(hub_dir, "proxy.pid")

# The hub's state in the state folder (root only).
c.JupyterHub.db_url = "sqlite:///" + os.path.join(hub_dir, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(hub_dir, "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(hub_dir, "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True      # stopping the hub stops every single-user server
c.JupyterHub.cleanup_proxy = True

# The unix users the hub created, by their unix passwords.
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = False
c.Authenticator.allowed_users = set(s["users"])

# Each user's JupyterLab runs as that user, from the course's virtualenv; the course's exchange for all.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [f"{venv}/bin/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.ip = "127.0.0.1"
c.Spawner.environment = {"PATH": path, "MFML_EXCHANGE_ROOT": s["exchange"], "LANG": "C.UTF-8"}
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 120

# Continuous grading as a managed service: the course's grader, as root (its sandbox needs it), in the
# instructor's course directory.
if s["grader"]:
    c.JupyterHub.services = [{
        "name": "grader",
        "command": [f"{venv}/bin/python", "-m", "mfml_grader", "serve"],
        "cwd": s["course_dir"],
        "environment": {"PATH": path, "MFML_EXCHANGE_ROOT": s["exchange"], "LANG": "C.UTF-8"},
    }]
