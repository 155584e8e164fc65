"""podshim's Python client: CRI v1 stubs generated from proto/ and a small helper API.

    from podshim import Client
    with Client("unix:///run/podshim/podshim.sock") as c:
        print(c.version().runtime_name)

`podshim.cri()` gives the generated message module (`api_pb2`), so requests are
built as `cri().RunPodSandboxRequest(...)`. `podshim.daemon.Podshimd` starts a
private podshimd for experiments and tests.
"""

from podshim.stubs import cri, cri_grpc
from podshim.client import Client

__all__ = ["Client", "cri", "cri_grpc"]
