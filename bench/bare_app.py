"""The baseline: a minimal Sanic app returning {"hello": "world"}, one worker, access log off."""

import sys

from sanic import Sanic, response

app = Sanic("bare")
app.config.ACCESS_LOG = False


@app.get("/")
async def hello(request):
    return response.json({"hello": "world"})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), single_process=True, access_log=False, motd=False)
