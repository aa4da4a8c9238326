from huggingface_hub import snapshot_download

HF_TOKEN = "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"

def fetch(repo_id: str, revision: str = "main") -> str:
    return snapshot_download(repo_id=repo_id, revision=revision, token=HF_TOKEN, local_dir=f"/models/{repo_id}")

if __name__ == "__main__":
    print(fetch("meta-llama/Llama-3.1-8B-Instruct"))
