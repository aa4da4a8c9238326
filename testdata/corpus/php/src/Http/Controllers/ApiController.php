<?php

namespace App\Http\Controllers;

use Illuminate\Http\Request;
use Illuminate\Support\Facades\Hash;
use Illuminate\Support\Str;

class ApiController extends Controller
{
    private const TOKEN_LENGTH = 40;
    private const PASSWORD_FIELD = 'password';

    public function issueToken(Request $request)
    {
        $validated = $request->validate([
            'email' => 'required|email',
            'password' => 'required|string|min:12',
        ]);

        $user = \App\Models\User::where('email', $validated['email'])->first();
        if (! $user || ! Hash::check($validated[self::PASSWORD_FIELD], $user->password)) {
            return response()->json(['message' => 'Invalid credentials'], 401);
        }

        $plain = Str::random(self::TOKEN_LENGTH);
        $user->tokens()->create(['token' => hash('sha256', $plain), 'abilities' => ['*']]);

        return response()->json([
            'token_type' => 'Bearer',
            'access_token' => $plain,
            'expires_in' => config('sanctum.expiration') * 60,
        ]);
    }
}
