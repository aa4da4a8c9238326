package com.acme.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class JwtUtilTest {

    private static final String SECRET = "331a5f97c0a3a79539c04f70415c28dbf53e823e10bfe5f550e08fb44d0ef623";
    private static final String EXPIRED_TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0NzhiNTgyOC00YWUyLTQ5ZGMtODUwMi03ODM1YzdlZmFmOGYiLCJpc3MiOiJodHRwczovL2F1dGguaW50ZXJuYWwuZXhhbXBsZS5uZXQiLCJhdWQiOiJodHRwczovL2FwaS5leGFtcGxlLm5ldCIsImlhdCI6MTcxNDc2NDM1MCwiZXhwIjoxNzE0NjQwNTcyLCJzY29wZSI6ImFkbWluIn0.HOJ_sFulOmDJI6yNKQfMBu70eH6QDaC2VrhMs5E4_YM";

    @Test
    void rejectsExpiredToken() {
        JwtUtil util = new JwtUtil(SECRET);
        assertThrows(TokenExpiredException.class, () -> util.parse(EXPIRED_TOKEN));
    }

    @Test
    void tokenTypeIsBearer() {
        assertEquals("Bearer", JwtUtil.TOKEN_TYPE);
    }
}
