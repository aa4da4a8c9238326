"""Generate fresh secrets for a new environment and print the commands to store them."""
import argparse
import secrets
import string

ALPHABET = string.ascii_letters + string.digits


def new_password(length: int = 24) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", required=True)
    parser.add_argument("--password-length", type=int, default=24)
    args = parser.parse_args()

    db_password = new_password(args.password_length)
    jwt_secret = secrets.token_hex(32)
    api_token = secrets.token_urlsafe(32)

    for name, value in (("db_password", db_password), ("jwt_secret", jwt_secret), ("api_token", api_token)):
        print(f"vault kv put kv/{args.env}/{name} value=-  # paste: {len(value)} chars")


if __name__ == "__main__":
    main()
