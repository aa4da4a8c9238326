"""AES and HMAC known-answer test vectors (NIST SP 800-38A, RFC 4231)."""

AES128_ECB = {
    "key": "2b7e151628aed2a6abf7158809cf4f3c",
    "plaintext": "6bc1bee22e409f96e93d7e117393172a",
    "ciphertext": "3ad77bb40d7a3660a89ecaf32466ef97",
}

AES256_CBC = {
    "key": "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
    "iv": "000102030405060708090a0b0c0d0e0f",
    "plaintext": "6bc1bee22e409f96e93d7e117393172a",
    "ciphertext": "f58c4c04d6e5f1ba779eabfb5f7bfbd6",
}

HMAC_SHA256_CASE2 = {
    "key": "4a656665",  # "Jefe"
    "data": "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
    "mac": "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
}

ED25519_RFC8032_TEST1 = {
    "secret_key": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    "public_key": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    "message": "",
}
