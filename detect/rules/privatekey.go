package rules

import (
	"regexp"
	"strings"
)

// Private keys in PEM and PGP armor, and PuTTY key files. The secret is the
// whole block from BEGIN to END. The body may span real newlines or the \n
// escapes of a JSON string (a GCP service-account file, a Kubernetes secret
// rendered to JSON), so the pattern accepts any bytes between the armor lines
// and pemBody checks that they are base64 and armor headers.
func privateKeys() []Rule {
	return []Rule{
		pemRule("private-key-rsa", "RSA private key (PKCS#1 PEM)", "RSA PRIVATE KEY", 8000,
			[]Sample{
				textSample("# deploy key\n", "-----BEGIN RSA PRIVATE KEY-----\ndm1wixhQEkbZ2gLKtQawwmWJ4Y1NE12CjmsqGGJGkecLWT+GsYy1ijeJ/CsXrSU7\nfPneJ/xmz3JVUnJTbr85SaIWEsnvH/HGXhYuIhxwElT1hElZ9YgI3vIT4sxCvIRH\nNBekbgxe8ub2sFsAW4QrJC5fKqW3Fp3gaaA+eaBdv9R0+N2CYRgU1jNdH7Q24uDJ\n9GpLSuUvcs9VOMC+Inll299QpUGGxNf2Bj9081D8w4I2TrWqpsvQtJIbEF/snfHN\nbRCGcVBB1NMpMWNjk87zbz7LzxYdLp3+17nCdkpexD3AbfmGLwS0C8DVq9N+ap4l\nEZc37Uh90EMUWsTt6qAVnvd/hQlKLC+TkabHc0ouCVqxO3sISsKUqkOwHyma8c03\n4AvuLfSvaVi1Y87730Wg0p1d9l7Gu1WTpHR6RMp4/HQFaBI+tB9zcrJmLeEJCeUW\n/h5IhRsLGvnTh1z5/5bAxOaDHQmmwBJ7MHttdgG7lOXGlMTITl0ofSdmlJouS9MP\nS6RTEbmKRDzUZ9A0OlvGlk2ngCe8RbI/1qRnyFTQ6CMFBZBvxsrV3BvPrz7KB0w9\nU17NgUnXH+kLeYSBNarFHWD3pAGoMDOna9Xv7eRxIil1xQzeseYq2R16tC5jMZoU\nCb/r/japPCy3GstBurztuP021OwLeV6tfj5OKrduN83EsyFkI2IjJxHRFIZh2pKY\ncoMNGzg32yAsUfD87f3eQCa6O495dad2pPcdZHAvkK7yrp9SuM8fh8jM9xO0cUwp\n/7Lx9uo1YbZQkPnNhHr9/L4gc7ryU8uXHDEPTMgjQlwBJ2gf59GYEN1PuvCRvDTK\n5bB0sBTL+CqnlxnbgujBlwTGnHAwytBIBXqmx3T4Oxgc4yBwHPpQAIkEswbJM+Ed\nUv83zKHupswvtO5izCcgTPvVkuXdoRtVDgFA2u/vRr6Q6YHUFcYGE9w0KUEq4Rmq\nHy1JzzudiNDGY/XxA84xMTo1pfhWfbTjCpxHBiuTURfgJnzJjuwmeO3+TbAf400J\noRWt7oJDVoHTpXXcTqkH2MSTif+2m5rwQh9qf4UDkPHlC1HCDiWuRe2SlOFCwg+R\nH/9c/zRD1ukcsAHnEjNVU0eB4+7pGHuIdZbh7rsQZ7QoybhaNY5nVatnbsgYHEeE\nshknkAodIzFpMhdEz7n7dYV81pYeEHw1PVIvXCkTlKw3Wsu+kY5Im1L0WSdSY6mE\navAlCoT5FHnwlfJA9ahpVaA5ma6srhGT0+gKmYb/xCfj7cndHL9gh4tZP3Pw3uB8\n5gg+4gYwaykSswXGaZ0IN8zj28zVoGvvjaDhzGxsoq4j3jzlhCE0gTYX5MeTAeSg\nyQtUC4Ek0JXSzGhWjulUDIfEx1MyC4c6Ycjw8OUT/hL3pqRfMlNeICllLx9DgI1q\nboBEXPMyKEd7exfYent/IDvaU/z+Xz6VA0tO3av5Vao8bgZTspw1WlqcWpSJr1ue\nETNZklgMk1nB16iO0R1mHVTocvrPHpuO7DalzxvAn6XSMYPM0JQLUeoU9jfThu8t\n9n0HKP6hJwa6n5vNYsaYrBmb0i8GLreT9+F2n0v+dw/qW2HOk7U=\n-----END RSA PRIVATE KEY-----", "\n"),
				textSample("ssh_key: |\n  ", "-----BEGIN RSA PRIVATE KEY-----\n  Proc-Type: 4,ENCRYPTED\n  DEK-Info: AES-128-CBC,183F18DF9414329C76A6696CFF7C37D6\n\n  pRw7Y23mV4WMT4Dbjec2dO6h3Nyy318l/zFhvWjRKQrNxhO2iUXjNJDOn/7FLMNB\n  uiUZViYYlUmE750tujdWF+VZNW/OI7pqUF7dLwAMWZ9BgHH+Msy2f3Gu4KSoBKAy\n  J9sjHodYeJsdnLXBiDSoS9gx8twEsDlCx/OhbBDF2rsMQ21keSDEIsIBFK6LwmOx\n  pDSS40FX7ozkZKmAHPYcR1zaaEmv1zuMBGieU+sj==\n  -----END RSA PRIVATE KEY-----", "\nhost: bastion\n"),
			}),
		pemRule("private-key-ec", "EC private key (SEC 1 PEM)", "EC PRIVATE KEY", 2000,
			[]Sample{
				textSample("", "-----BEGIN EC PRIVATE KEY-----\nLFZd1ANzHASg0ny+vm4KNuPWjx0QWbT66A0PFN/E+3Go7sxXiay6beBsJOuO2FQ9\nIVVqPL9EmB6hg0T9mJri7vKpwOHTc1NGf5bLDHtoYM73kkvaMo01WG2QRvgnSxmZ\nbQt2XM7SOdNeAzxTL8aSVYn1WIYwjPwVvw==\n-----END EC PRIVATE KEY-----", "\n"),
				textSample("const signingKey = `", "-----BEGIN EC PRIVATE KEY-----\nQ450CkhPCHMsUmGk2kACkVyOWxLSy5fEfb7NW55X39kufA8FkLM5dEKQrO9bR8kd\nvxBDIzWupKAj9nYPHm4FKXHCsg2h8gs9cYbvEg8RMEccqlFiDa36LLWLPAoahVzk\nSCacK2yCPLxUBuLsavogCN8RjgPztbIVCLg1IX9+M0/TuOwKsdbG+XxcOAH9HW7s\n3eaxdO5X3Zb0GqbBqXL2S7Myquulj0E=\n-----END EC PRIVATE KEY-----", "`;\n"),
			}),
		pemRule("private-key-dsa", "DSA private key (PEM)", "DSA PRIVATE KEY", 3000,
			[]Sample{
				textSample("key = \"\"\"", "-----BEGIN DSA PRIVATE KEY-----\nN6jnKBMekKpLos83rw779O3O57fFS3m6/quJgw46H72x5fTaxR6em+KpsxUMSiun\nrI4ox/07Sa2sErWTLSXCyFfRFbwaPamNii8BptPg4OSpOSQqiZ/1BmliWZKYmz8+\n2iFtgut96MQ4YDMaW0TTezQLc6XJGDiV+XbL2lHpwh65pEkWS7Q6TcWcrZkP54nM\nqcwLz0yZP4f2j/mKONgE1up9cgzMV3xfhR24hI8Hvxh1radXmDrEICKl0yqft7+G\nZVmnBSVraHl5u8VByKLu5ni3VJfafpMaCjB225VXh15XciBZjnVUnU8QwuP0tL70\n+5loZUL2P8qi4Fg/6sAaEEA/79Bt/D8dy9cr8JiYuLYNPC+7NypAnB67qyIgtecN\nUaxRoavX9HaGeWuHTEB2UD1jaKWFx5/UoSKGLunkxHZPEkSMEcWPQUButGmASfYU\nwylno06G/vgkgYzatjrpaUrlDs1MNKzXnVta0uye4EU2pYrtzJ/kqZVYsasRivgM\nYgjb6QG/p4Uv7VRs9vJFxnlVFikzwMvaOBr8Xj46eySMgBUUTrIY0UeA+AfVr6Xc\nNsCCNlO+h0XlUg8K\n-----END DSA PRIVATE KEY-----", "\"\"\"\n"),
				textSample("", "-----BEGIN DSA PRIVATE KEY-----\nx4Z1fpyJRY4dJvm1Bbp5Jc1ZRQDlK8QAvDFpxEDM4nr7WU8jlozW8Bgj93MiSokR\nIO3Z08J5jv3qOWISwOVFODkKUS7rgJbfil3ppvwIGQ8fQ5MJixklPtRgP2VXzmkZ\n6L+Vjp99EZ2DTlmW+kRuTsKQ21tFSuuze4RA+bb94iH8bi65tqc/RN8zedoi1ulh\n05WdhF+TPCtFwVf25XzlISqdvC//zKq9P9Z4EnVoK7gN5CUy6Dy+lJu+/DEA9uzf\n3Vf3kxvnKc2r48DgDN0FZFL4yIsCD+7E+UDFvjwirUbEOJ2rOsDXouOdyOuTFEhN\nI1fbl4gLueCJGCHduWgTDJNPl3EUqPpdNAcUVtBiQWFhJqLoFmR4T0vfYsqGJnwC\n+ZpQhQSvONtsGsvOJzF8lzzNTWU1Y0yZVKbQa76dHObOkAvat71UvKlHzHQuDlTu\nTx+I7F+6icqvpqki2NnjLOPY0Xa2pdcSLjdBMy4pa155i9djAOq3e7GdjUUHnMPr\nFlxlX3ggm5TUchVgVx0WKzGVJPwiCD07E9Wb3Yd++pDnc3e/tdGw5jffQg7ShO5t\nrydlhpi+XxwIMHQA\n-----END DSA PRIVATE KEY-----", "\n"),
			}),
		pemRule("private-key-openssh", "OpenSSH private key", "OPENSSH PRIVATE KEY", 8000,
			[]Sample{
				textSample("$ cat ~/.ssh/id_ed25519\n", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA0jrR+EoPT3GZ4eUZx7sdK//fsqASQGpWWtOSKzL/lltq\nHmxweTyOED/k2uwVzyhwwxbeizye9RJv9f0pa/9yLimM9yYmmIImlbY/CcwkE6Y+\nZHCb+NyJEpEdw2crDhkKJ55ZAXbPYUr/SoYZCQtzXNP5ReRCwCNbVHrWd6JiRxC3\nVNiGMv9AYZ8b4n4KRqQWLCYyFVJpCR5H8hN5hv+IqIUbjrw1RCwF8cSXuONwiGkM\nSe6blA5frwbwGL6TrUYGzD8RQr+hrFmrcwxezEmT423pPiX8l1iqIMtLjrjFgmOt\nsLbjhJNFQaO0iYpanodWwuiaWP+gxL/tJ9BcAVZ/qmjyBjr+RtUG9zdmnDONZvc7\nLrFE8au08at5d+BbboLbfh8llPmcwmvO6pekKCaT2Ke6Yf3iRwT7kF+n1SbUW+g6\ns5GF/iltuhHHlnLAJTS0DE05bZZPUon5axYSUDTUMPG87D6KJK+N2nAAqPAao7Mm\n37A31THoo3gT9SI=\n-----END OPENSSH PRIVATE KEY-----", "\n$ \n"),
				textSample("  SSH_PRIVATE_KEY: |\n", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAryoYpRs0m/RZu39depiQWYkxuBqqJF5QRcjCCReXhbzw\nK5XCSfGjJYSWbioImId9BGvCygr+3a8DdlsZZw2xCrjr+zVShSKlsNANTpE9rcpH\ndtOrQYLTS64Zr4a4CtR0uCMUa3L7wj4gcPLEFVqHK8akHizFsJParNCayYJZsGfj\nu8smNHqn/tbNXW7t0yC+wAKgpjVg+bAfS2VPakadz5c2GMp7Mq3+zNv1Ynohn5jh\nPjAx0iPF/DBA8iS7PBVcgHFmXo8kSNRHWdTCTbL/RGUoVUTIpH7sACGba/Eeajm/\n5YXiXGlXtN/NX9isWYAZhawCdfmm0EeRnsBAmVacPvOEN/JyjpoI+Z6ELQ2lz7+Y\nHDeuYFbJfGZroRZgN1wmpOdn0vQpIRj50SKO8f6ZfpboWQgPGq0avdrr4US2II1U\n0kfCciNTo2QdRF6FZP2vZ8fsNLQGF7Eqb6SJTzwSalx+VTDg4Eup4Lz7u5mQDq4h\nw3bhkbsVlPuhk0o2cnQS8S8bEpeOUX5dsof3TjERX1LBCbXoPtLxmLDGXOCjTfDx\n6FNxmszlTviB1JBPiuEOCUal1bew9LP80xxNHOYSnEijP1fqbbP9vqN2LNc6z/uB\nl7xgFlweShAfUpw647HhJOtJexPmUodzBt6kjAlM7X7hRLobuh9nTpTB9vatqQFR\ncOimCI6szJpH/rm7/rS6isjjsqaH6imkqILST/jVSGHArHsoK3lMeddxGN7iZT7a\njkmd8gShW1flCvt7ro+q7iIPoDID86DifhkD6kTLt/4tR0lSpP8eqbWfZwJnRBOG\nGg/d34xP6E3nkK/H9QHUTRwB4AL/thoQZkxNKpk1SZvFhcqfHKhBuEq1Etk56rcr\n/pFRxhQA69UD5GP72xQSg56VXvZq7GSgyohU/o7Fu0HUi5bktuxoNNFaJy1VcPDw\nHLm02kcYxttMZpE0JCBS8695Fcq8Zn7bIK4sk0kYCxKFFgZud0TnreuJQeRjks0n\n7mqxKlEKkk+7+96Oqg2NDYIkcu8H0/64LeR96H+XOgNM3HQlqIylNptF5r4ZmQme\nh9rihKxXwnETHzXU0/C6OMNHVlEegrZuMvk+5LjRg/WBUQypqihU0DVpRZiMfvG1\nAPazDR3gooUu7fg7QHHWksCGVrnknSsqtyLWPXKwVswnc8kwc9Sp1FCo/xByuv8g\nkYAp0izkYR5upZY3/EBHE5M1rr4ThvgCtkYRUj67tZtQCUM5t1DeOu63r+xjfkV/\nJgqseRkWuGQVEUxGCVWtxXDf9I4Cqdi1cLeQ8wtFB/yyXkwlA2UuOuasWBfnM147\nnqLAZFV67euydQGCucVkWCbY4D2t+8qHFVhUs9ph1BUjo/0QusmvPdWMhEP+0x3v\na4WfweLXCilhNHEux96yYvHn4kmsyHDVD+UnXbkxwgFT76j+uKGWzq6uvXVUHZjD\n9pQ7Zymg4sSIGjSQQINoVlNSKkBQO3BANR9kf+LM3kPZ5bMLuwYiTNtT7X44uFCF\ntHeOp1WRWKCgXXa/6JqvZ0d+eg4SOwOgQ7cwBn6VxWXz+dSmevUbbGodsWqgGzoc\nQyFXl8dS4j0sVm+zwP4vEk+OYQo3L1ExLpZRYSfucTu3jOjAc55zbu5UVPMK4Whs\nLO/pb7GpXXy6D64BfLEEF6lMvEtJTx/k9qrjeHAZFnWLa3VehgL08U8nV8GMAYE0\nqWWcQeKmAaB7mgOBkKr/W6seEYnPxMmmctm8nOvm6MzqIsjU9fQwfKUnDsEjUEhI\nHh7EMuNzvh9kWiwyPR27IGdfANWC8F8F1hkWymJJdnl8fRnNqlv6VbEE7aXZ8lm+\nAdgsHOi9nBJxQZCF0owTZNHMcj8IhPNRONaHF0mho6MtQlKw5xQUntz0YLDHpXEk\nfF6RMJiWRfa4KqOaLi+ZQtmGn5dHDzeXTdn/XsOcaI+x6GvIYahd8xN07LXLZH7E\nHcuygPJlx2Lw4stf+v2BvZf1tuUvcsunxCfDfwBzfc7e/cMPZJyNd94lwYAxqLDl\nAHCiBf+1yKHjrdbA5S7fuHkwEj6nsVcs0KQKidf8G0sNYkxpCCQBf7Qz/yDZxpoo\nGta3ZI92drefQPWsNG4CIW1dFASS24xnUrW4gPigkmiHOxTRCbQevbu5hyMkzEQ6\nobp7BwiattwgspJzYjN3Z1tQnJuaxuxEUMBx7X0cibj/KMBzwjHZ6ETS4c8DWEG0\nnVjovFCHdSV03WBsu/h+dFddoTNNjmIIrqwiKXTbXGeZH35IV4LOq9QNW4pTRLzG\nv7rGWRVq1w6wQQQ3xv8MKDS4pmTcv8UU4MGhYAxdbNAMMxjbcIitrdo8iQPt295o\nTgno9gAEH51VK3O1vVdWV7v5WHZHE8z2XpxdI9WC+5tG1vd5EsiS\n-----END OPENSSH PRIVATE KEY-----", "\n"),
			}),
		pemRule("private-key-pkcs8", "PKCS#8 private key (also inside a GCP service-account JSON)", "PRIVATE KEY", 8000,
			[]Sample{
				textSample("{\n  \"type\": \"service_account\",\n  \"project_id\": \"billing-prod-412198\",\n  \"private_key_id\": \"45f2a5cbbd713c9e7c14f6b039bc8abcb58f6470\",\n  \"private_key\": \"", "-----BEGIN PRIVATE KEY-----\\nKlnxY97ORwH66WqBft8WP4H+iLJyPmhE1Y42LTeT7J48JuZ2AfVEd8cUPlTMdnQu\\nbaQJXr8wHMRZou08AfOBct/rM/fiNprv+KOjJJF9/0tyHSDhRGXqEwIdvyg5bUuo\\nK83rhZ9qROYFWCc36QsvNveDJBdDuulukiNlaUYzDesfKmD1yRrr0j3XASubaGFw\\nUAFXtJ0DWF1Kw+PaqhamGP4wkvABFCSKykSX31mykvXsYVdxiZ3cqzWkrrNnYK0y\\nRqmtC5PLGGsE2M8SpYq5Y3GUTcob0x6O00fK+kTvUNibDHhp0Cq8UYlvodGZUZf5\\nE1mDlJT4QXf44S8BminKcVODRFkT1wiVvpv8GtwVea1UHVpSN7PIyJJ15wpqBBTf\\nisxFZfDGZDWy1YaLzFKHLbzG0fGOIBYvagtYqoEEzMj5W5K6NQf0pKG32O2v6RIL\\n2CH17+HEGr8+C8aVfe/5AECNnwk7hem9+mPZmw7UWygzKq9zI9x8xEnRfnPepSdz\\nVXsy3m1J3EncaRb9+BFHMcL265z/E/R4XlQPWOQ4l5qLAAwyHNvkA7vwLHaa4AD0\\nSxMULwMBgfEkphGexKhNVf4W3Ihn5fFYPlNhDMg8tREhKEf/G2BEYKoAjcqjzkEi\\nCIS8JvFSlUkSB5Y+yU+lR4LVxNI8fhX34ytApSawZ92apB456BHlI7hgj/UKdNUo\\nvJDMwGjwe6elCY702r4dOM/6zvcILb7voZJ55/khZQk1Usra9Ck+uLi170I50koa\\n14S+qtf4LEqC2sM6h8wzt7TCb0FhBIe1GjftyGudadSUWI5HvY8ypfsyFoXGJApw\\nvKDk6fmkatO7U+7YbfSr0lqnPl1UB3TtXqDvcwzPsnn+xnVc1rZwFXiw73pI4fx/\\nHgGVYjjEDhUQ8kxRfccHQY33LjVupIGt5eTGDJ7C1XQhfkGmWa1qeLoTS0TidDgM\\n+HWdVcm6En/ivKOueDmbk/ih2pTHaZpLum8FPfQv8xhSNYdkGM3gNMyN96v/UoBf\\n8e5YG9840bEtGBXJZzHS/6Cdtgx8RVKwhBLzbYMNhBQDbHLNzyTKgyQQn4uu65wS\\n8TJ8mbWnnsWa0ZqLIHRHrFA66oMugMHxk7IQoGv9yRc9EhurOfzH9t3RfgtjbGaM\\nNUB7umyYfpnzJ2ofqinr4y+1YNMgwBzuS3+3Df6DfiknGdFWsqM6wVQ1HQ6ZZ5VB\\n3qzbGioqAxya/kP8Wm/3nzDfhmF+fvLdDOhJGO4mLkgvlIXukFTi89h1EjpJi3vG\\nk1zmPd5tnwPAO1kigRtXflEXcvuASM7pfN6hGCi3kD/h4J+0oj/CHOXTD0D9xda3\\nTlqeQ0imDYkUpdW/ePWZBh+VO+YNtRZewadgO208howF0m1biJS7DgncwPJc0qTj\\nI1eNYsKf4j1lfxh4E+KJPz3kdW1Nf9YBv6QQSLq30Gdvx/Eeh6VpZzsxPKwmLxD9\\n4YYiuDerbfgU3PqklfTqLl3JBmk0n65M/tv1RSwLpPcbqHfwGv6+jvay7bbXMnWw\\nxmYywPjzjse2AXiuTHaLUWQ8mJEctGGrLdNCCNXo++ZDBaruNltt98LEigYyLywN\\nAdX0UVKI+PpoLmjboXeziubj\\n-----END PRIVATE KEY-----", "\\n\",\n  \"client_email\": \"deployer@billing-prod.iam.gserviceaccount.com\"\n}\n"),
				textSample("", "-----BEGIN PRIVATE KEY-----\nm+RqlGLQYeBB7VpqmrPHxAeTbBiHoV8E+2OltEOvS0yjiqGZH+IHd4e24uVqC5Yt\n4OQphYb6jYzX6odvcipWPPu8siXmWwiLeqo+STRJyTi36uzaf1CnrrBn3zaVoyuE\n1F923t4pnDat1JD5+ZalOMh19dMXxYOKo5D9Yori+1eC5lLvlbBlJUvDeLIwwUzK\nBHPbjyb4NFMlSgAcdhJwn3Ayzl9YZWaDFgGCUJuy58HDzhtNfM26TyVIz3sBYf48\nIyKEgJHVKj+u9VIhcwa0shAeTedBAj7hc97QMesywzDZ3u0kVrpZfYQcHSwLrQdL\nkaWymKNIFrNSl9XLzjP+AinVLqzJY03Jr+LxGZECfz+90KwWQhrD7VZaPV5aGKCP\n24sjeZlaJZGn/3MCVb41H3F4Ru2maFPNeLIwbnCA5GttPATOBpgl4+HULoOwoxFc\npogxkrcL/AQzhUgyijYR+pLKKBPYAH2CWXv7oY7dMUc5Z8dk+g7V/1cSM7LbipR9\nDDvEtasWXh5tp6uJyXTRJ9cTOc+FiI+sJkbmS/DIxgZ97CiLXSXusebqpJpchoVy\ntncDK466cy4bKkW9b5FrUn1wwKneqaX26aFMydnME/ljBIWwDzQ+PE1myP37A6Fv\nUMcCHUUf0W71rj2RYQDbJ56LL5zpoFpaAp8GWq/tNxgAZpJoXNPLqdW5Qlksjd/6\nvPvxkcBz0TQa0NtkZrRwkGT+WNpZ8/7kt4SZNPQKqk08nsYNxZXL7rp/aBVfoAYB\npJCMUj40VWZ43FTsZzvOmnOeSXcX2ORtYDXztADgjM9YdoQPHr7DE+NX8KMxRUmj\nzqQqVP2V2+8GzlCotHqvVYHIIxNjfL2KzZxG0V/v1JK2hN8uGUbXA/2aAz4VTkrY\nzh9nQUgvRAw5Y3CKL9xE0+DGKeDUswUXQ9xj99dTF7zfUxV9gcu3l8JfvvMWcU4n\nUMiDMlx4ReNgSgcB81huv3w9IoYdE4bhOpaadBkdxRLmObgveqqVmhBNguwrRbCj\nME4GFUY+TxeWIdcd6Aa7D6aIOw1xm86z8H6LDAFzboQhXyFYlqV8lddXu+Uk/xJR\nPh6s35I7ONid9PQVKDl8cy/qnMdt5aN1KKuogWbsJqI/99K9+oh9Q7m98pCjjMer\nVsK+I+zVrtVp2OXLf/cJSN8k+Y22EC605zCGDtr0zEhZsfvpfehr4WoTIs5M6Xnb\ni3woH2EvZUJTGvl51HiyZMbvTBbc1KIEZZge7Q+L7au6605JDX3z1d7IQZhPu6sK\nHamc1iv9cWp0ISAjP+CgWLrewtmOSKUh1m2gxbiijI8fxd+5EFCpeSMULLy8qEip\n2PnKSEAxWRbFmxOeIgaBt2y1SAD+DyvnhESD/86OxSLoc8++yRt8EgjEMq/uOfqe\nqi790ryqHCIyZ9S+ExWen31T5zQFNsl9rs7rGlhJeDl5b8JAhtdJjUB/c8qypsR+\n2ZBCN0sz4Hr9KRAxEuc+BorDjn4zQwk+cV8EeQwVGCvbVhWMLqj5DgrWwGErxxlm\nEv2ROR6te6DCpNHo9ggWPXgcPvaetSZsD3n5h0xZjNLf5rxygyy34h99zAG+usQ1\nqx5kL1Gvtb3Gbbbr8FsqbgZ2\n-----END PRIVATE KEY-----", "\n"),
				textSample("TLS_KEY=\"", "-----BEGIN PRIVATE KEY-----\\n17kewNS4cRlAzxkY6Tc1wuPGa0HXdB34zK2isPYRXLlh1znUoAUGW8kvnXe316PG\\n+ekNgI4ZqPEc9T73TfanY5zWeGQ0f5+eVwc/2iiF2XgFI+DXMIdzeCYogYY4L+BS\\nStSWr4NFDeqQ6t0YIqEG+RNz77tr9FJupKOOx3RWq/zQSaAo0qn8EFEy\\n-----END PRIVATE KEY-----", "\"\n"),
			}),
		pemRule("private-key-pkcs8-encrypted", "Encrypted PKCS#8 private key", "ENCRYPTED PRIVATE KEY", 8000,
			[]Sample{
				textSample("", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nCmOKUraS/2YX5HIVjg3MiELlXbsS7X7duUW8cmONrO5Bua7aaqZzVEFXMjx4agYR\n4zM2NcJ+dfy/yNRSSrHzcE7xgLvy1mImd+T8w78EATVWF3rkkiSuixWjARrR3sp9\nbzsX6z77S5fP2lXJl8F8pWcEg3CD0T5/+oJKyfgX/jsl73H7fxx2JVBrCVp8z9d9\nRr7g649Tu7ALmZTg1rfWcsYbSgXV567j58OhIBy9SWebTLNcmkbbVAE597tPVZuG\ndy/j+TZJ19WEuc3i7IK/9fTP7DDZ9G4bHPQzvs/Yhw00BZwV9ac833VW5CU5wV6k\nkX5ly7IVgNQcpT0tDncYRJIFvh+WppEztN2ZewpkawhpAhDo0PWE+/slxvvn/Hs5\nCAtvSK2NeDf5L3q5p2EWv9EnmzPGGa8CR+oy+Ik4x1FaLp78ecEaQdoI1ldHBRxj\nLQlIm/EwQuhviYnm9Ci0nWQ/hnr3M0TdVtHZinqIf024cc30CPKyZy0fOFQlHlZu\nHT0ejOCmpvv/VjlSB/XrC9nDsygYR+NshR9PdZ7QeskMT8jmOzNvBKplVjAnSHKY\nV5KbyM+MqPhW+jsaSFU9JF3cPgQuroS9qKzkO/3Vq9GINUmKSUg1PKQGW9+JSIx0\n7MrtJsIB/AKX+4xHfZSmyWmEsB/veaaBZ4HxA91H80KizgFyjjCtLMoM/60qiC4X\nPdD/xOpPHlHri8AKCiRXlU5zovQEWWSY+hMxt62se+2ITgCPmhNZfYsuzAAaNPOn\n8eT5PyLjuorWgFlArDRa4G62dz5gnQpJ1IQDZuJUHrfNvhy/bOzByuPE/h0VXsPQ\nQri7nXcdj3uZa6igZGA/iqITh3M0/1pst9r0jE1bPpHCXqtsVL5Nbp5obJIeHato\nLdLotb1yBvNbtQIgAamu4St2VeA2l5s80NMN8dIvgNUB7VcK2I4uDIlJQY2szVdA\nwi6O/IaCqdfHcSzyLVse6p7gyReacEzYi7Q6Q6V6Q4uv3+vRh4E9ISlsOxjtYHhf\nVysF8/+1SdPGFJT4iCKn7QxdmbOeHDHlI5LDfn5jNP2FqhBZgBeefpU6YBmVuw5f\nO1LWfQw8TGQ2fRePDU6X6cWRHzzJjlVKcH4qq6bciov9uV+X0BsjqYbxyc1oKLiF\nk2V//R7nww1RKpwDvCgcp7eMGbnYQu3cRhv6LiaoEf21dpN7eu+4/SojnlnVgMiw\nqpPJXMifyWSCCcHIoITO+1GjRmtYJuYBeFmVIwchnLyRo4iAznIOaSIfAt/nP4PN\neWS4cGRCgsRBB3lcTgv32DjPTIwfNDc9pfEuB6VFO4freybEWujXBcyXIJX9VD8J\nyRy2ejnaSorYosLuLQzSl+/if3s0TIcqfpNAfWr8KNH/gHlllaTVxv32pzoPqaKJ\nO8tw7AnGEYfPpNmkvPX8BwGqyR2a9yXs4kQW8vyditOvMB8UEX6wkM9PXjcx576J\n7NzsSQOkdFXxh9w8cBRgd4qLLWStY7YiSlTGL2unuWEMSWM//TydiFIXQHsf28Ou\nRwfE9HqHTjiaT+Na402h6AVrH6SNZBFGgxUyLgSlQI5KLCzkl9b7cYF5lnfkehvR\nb3lO167dAknro8hXSTniH0ttwp/z1Nzt8iTxTjE6Pm8To2LBex9cbBWm+ZEU3kZU\n6XJWjf0Hi0GK6h2ySoRx0vQzpglFowjzC4Dbx+tE/d962uyXcyzi5CEYlcLPncW2\nrr0=\n-----END ENCRYPTED PRIVATE KEY-----", "\n"),
				jsonSample("key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\\nc/s41GRC8KrkErUhu7fW025Kw/XA6UsyIef2bMyqcfRF6hNNv3ud9CL52CGqmQIu\\nyJu4k3u5IKyiKvGolKWcDzn2/Xrmg5kzvYNOGK5fmarVX12J77Orz0gtFBZ5KEpn\\n8qa9IHAmWzcX8uspF+lqszG+xuqX96qR+CUrt+WXFeG2y7Iu8x/wjOnv0jUrtWsd\\n0Bn4uEt+NF3bXHGzIi6WFl2eUWkYVVMynsLVbnDyf9a54oTaHh5PtgHRFGVxLrZZ\\nDrilu816cAuX6LRx6p6xjPdkXal9u9MQwyC7D6/n0BjDfq17vHErG4zKnq1IhDMY\\n6g5SAp9mTpauD16UCStI8nisEBsCTqRkPCM58lKNUZTaqXWt84XIh54Ho4ieGiMT\\nbeqsAt07picRbwFJ\\n-----END ENCRYPTED PRIVATE KEY-----"),
			}),
		pemRule("pgp-private-key", "PGP private key block", "PGP PRIVATE KEY BLOCK", 16000,
			[]Sample{
				textSample("", "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nzAZdpgsC0lE8jzJ8HHE2dHhaRGT5tZR1Azptuf3wdLBYIKxNAIRBTUzgnVWHJUgz\nRngr2fLXzTK0LR4DiBoazAcofnPgCW9DpMp8Vo55uo/1NoV1TU8dY7MkCRT85J2I\nowtHrnETLPbcA+zAHVNSPqgbQxCOpIn7Ht+k9t54e3G/UFiV41jFmkt9/+vn0hDm\nkIHnqyJcpElnMxdjPNzbW951JxEs3R1fU6Ythe7MD46dq9sPaPiziRqQrrZ99Xve\nKfXh3srgTU2w175p8dEU\n=ACqz\n-----END PGP PRIVATE KEY BLOCK-----", "\n"),
				textSample("gpg --import <<'EOF'\n", "-----BEGIN PGP PRIVATE KEY BLOCK-----\nComment: release signing key\n\nIlt+sc1GdHYzTK2AizXYRpFDaQiRGiQx48epy8w/qArym+CW5BTqOjQ9Gmj8xZTU\nxPQA4hkFK/3cNF6FQ4Wbo9T15+b/NtB6bklSZgu/M9HYhV9F7IWKp+OSpewOGWJe\n5K1sc4B9i6m0WLaHWfK10ZWCiXg8sxfaUxjQW8qAWOjsOb/ZbJki8c5nz3n+0urX\njoTd0ex9i4TS\n=+oec\n-----END PGP PRIVATE KEY BLOCK-----", "\nEOF\n"),
			}),
		{
			ID:          "putty-private-key",
			Description: "PuTTY private key file (.ppk)",
			Category:    PKEY,
			Keywords:    []string{"PuTTY-User-Key-File-"},
			Pattern:     `PuTTY-User-Key-File-[23]: [\s\S]{20,}?Private-MAC: [0-9a-f]{40,64}`,
			MaxLen:      8300,
			Validate:    func(b []byte) bool { return strings.Contains(string(b), "Private-Lines:") },
			Positives: []Sample{
				textSample("", "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: deploy@ci\nPublic-Lines: 2\nsPOCucXsPRTId9AG3WpEd9631djICYyFrAYUiPyD1NYaXqkfqKU6OpQjgaXPWSqw\nYWj5\nPrivate-Lines: 1\n35OfKxHm4vY1uH7yAp8doFzipL4CdRUtv6ADuehBnNJb\nPrivate-MAC: 485fb800b400f5cb8587c7d35e7c45197bc6c63534b7a58e738a1977dd637f52", "\n"),
				textSample("key_file = '''", "PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nComment: rsa-key-20260101\nPublic-Lines: 2\nzVF5JC+pue9MTYdgqRt2qGkFoVZemMN0ecf8NtRTUeBj713wH8Xhqr3830ypK0Om\nEqA86rrZHLz/qgf+6Coq2GeeGBHpLuaC6wul8QNQ\nPrivate-Lines: 2\nsxXjKN6pRk2WarzLnmVyC3OM/M75zAJ6/0/yU2KS4bRqlEmQcK5rIW8+9Ga5PCHC\niCeFE3sCFsOrGA52WGX3\nPrivate-MAC: 6a9537dde66fae2b3c3222245da4391e1c1971a6", "'''\n"),
			},
			Negatives: []string{
				"PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nPublic-Lines: 2\n",
				"Convert PuTTY-User-Key-File-2 files with puttygen.\n",
			},
		},
		{
			ID:            "private-key-base64",
			Description:   "Base64-encoded PEM private key (kubeconfig client-key-data, Kubernetes TLS secrets, CI variables)",
			Category:      PKEY,
			Keywords:      []string{"LS0tLS1CRUdJTiB"},
			CaseSensitive: true,
			Pattern:       `(?:^|[^A-Za-z0-9+/])(LS0tLS1CRUdJTiB[A-Za-z0-9+/]{40,}={0,2})` + endB64,
			SecretGroup:   1,
			MaxLen:        12000,
			Validate:      base64PEMPrivateKey,
			Positives: []Sample{
				textSample("users:\n- name: prod-deployer\n  user:\n    client-key-data: ", "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCmJUNVJqSUtkOGJjb3FMeElGM1dkdHl0UUtTcVJNMTZXRmRsNUZDUERSUHUxU1dkSEJtcW1DcFBlWTZDRkFwL2QKSnJ4ZW16MWUzL1phUjYxNncreUl2QzJpUFRkbVoyR3ZlbTBjYnc5bGY4RjlkREtLY3ZqNVBvbDljTkRpVkdybgoxalgxM21zb0hEenBtWmxIdnA5MGtJcTNzczE0QkMzMVlBPT0KLS0tLS1FTkQgRUMgUFJJVkFURSBLRVktLS0tLQo=", "\n"),
				textSample("apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\ndata:\n  tls.key: ", "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpBZ3hwd2pCRmJ4M3UzMTlYNXpkMWYxVjRsM2paTC9PZXMyVXlSSjlLQk93akc4TlJFQkd3SkdYRFVXazBBYVB2CisvWWtpcG9yUnZqd0xRMGxLa2tZTW1tSGlrR0VKYkdja3VrLzdXaWxxMzFNeFQ5aUtTYm9USzVQUVZwYm9laC8KTWZucFVqZ2REZ0FOdlZtOFUvTjZEc0R1ZkhHZDhhR0ZZZkFtRDU2THN4aW1rSEczZ3dRSFpyaUN4SmUvcm50KwpyNzNrTzZSbWF5ZjlLb25FM25mbkFHMlJUYTl6M05RNWJkWlh6UG9JaDNvcERzTzN6VW1XNk0rY2g5Qi9zNFlRCktrOHpKc0tFV0V2a29UZ3UxRkhKdWYvdlFzWDRwZFVTUXBGY25pMFc5aHQ5TTlnMnpWdmtRWi9CNC9Nay9kNDMKUEJERjNqMmlnZm1ocTlTQlVmRkRtS3ZBYnpmVFpQMWljbUlPRDdqMG02bTVCbnhlSm9nblJOd0g5VUNxSHlQTgpYVGxLbmJ6UEtVdU5ucm0zOUNmMXM2eGNPMHUzUk9JQkwrdDMxNldXcmxXL0ZwR1I3M2g4N3RHZ293b0crV1NqCnZ0UnhCT0NpL1JhZUJOQ0VBTVloS3dwc0thS1dmR1c4Z2l4dHhubm4yNWN4eG5LckFpKzNqV2N1eE43b2FEeVAKZkVpNkdKNGcrV0Y3M09PV0lIYmgxZVpxSTFzNmV4TkxxdlVJdUVWSkFyK1llaDlYK0NiMFhWeFFEVUxnYVRlRAo3Vmg5VTZvWmwya2RUeEpqVFlZTyt4aStOOXFmOTFTY1VKaGxkdVA4VlRFS1c0QzlmWEtzU1JWTWsxUkxCZERLCjB0ODMveXpOdWRUNUIzWVZlME9XbkxnLzF6TEJHSTczNUdZNm03aWdlQ0xYQjIxS0I3aVJHV1NPWWkxRU9uL1MKRUVxSHlOZEUrMEZFYzJ3MXBRcjlITGlqUkJHQ2xDY3VWQkw1emEvdjZRSnhmNng4RVRsLzQ1MXpMYm5GU0dWMQp4MHJLRWNZQjhUb0lyUnpEdjFxdUlWTFhkYjh6L2NmK01mZ2VTZlEwOFVkQzBDWnkyQllpaXpTM3NpZ2VLaWFUCjdqbWNzSlVTUGNaVGloZlR3UGdZT0VqdmZqdWIwODdVenFJTHFvM1JEa0VZSWlBTEVzZHdDaS9HWnptZ3JPOVUKWHYxTzlOM0QzSVdpaktGNWYra2grbGJTY0tDTnlERDduK01wbkZOWkF6aCthWWxGRDVkSzVYbmlldXJjMDJuYgpSMjNsektTU04rcE0wblNmdUdQU0Q3eHJZK29KL1oyNUdwcUZGUjI1SkV6WnJtOTZoSG5QdHdLYkVJaGpneThCCkNQd1doa251YUlEck5sUXYvaDdYY1ppR041aG1STEJKeVVGUzlpVHE2cnhWb0g2SWR6cVVkTEtqQWZwQ3A5UkwKbFhBN1JVMDZVbGVPb3daZ1RrRGlkRXFIKzR0eXduby9GZDJVOVFCRVBEMzR4dVZLVkw3dkhxS2dVcXVYbHBMTApINXRqZk1QRHA5d2JXNFpxRnR4UDlzcTIzWU00a1RDQzB4RVBmNzc0eEw5WWRGbnlhU1QrM2hIQWFVREN4MTZmCkFTUzNYNXh2akUwTy82YjhnMGhLbmFnamM5STVSRE5TQVEwVkcvY0pjKzhCOW5ES3pSYmVTVGRpR1hsYXU1b0wKRHFsMHhkU2xKVlRpUmFvTkY4bWdyMTd6dXRzR0pzNEdWUzNiZHFNTXk2L21SaWI0TXdkNm5RaTNlb2lBdHhERApQMmFac0FUUW5MQVd3bVZjeTQ0MU1HUHJSOEZKZVhmTEJDNmQ4eUUwM0NBQjFtLzErUVg4NC9SVm5NUnNUMnMrCjcvZjVtUEFTU25BR2dxd1o4VVBuNjA5eGdIVEd5UFd2Sk1sUUlEWWdRS3VLMnI0aW5hUGQ3SDhGMm1VcTJ0N3QKYWZCbkU4c2NqYkVWUUs4VnhTbktkT2N3eTBXenJSNDlRazg1TENDcWtsaDUrRWc3R0kyUkpKOG1tVXFxZGp1egp3NjUwYUdheE5aS0xFRTYxMi9ZT0ZhRkU0RUp6aEs3RktxTWlxdmVqNEc0K2tCYW1Zdms9Ci0tLS0tRU5EIFJTQSBQUklWQVRFIEtFWS0tLS0tCg==", "\n"),
			},
			Negatives: []string{
				"    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCnFkYjlHUE9oRStKeG4xeXRnelZmN0tJa1lEbTBqNERiM0IxN0hMVnp3MVA5aHpzVm1TM2NZRlJSZVRXaklXVnkKSUsrVXcvd3lRL0hIQzJMalFnN3hnczUzaXhRR3RqWVhhSDJXV1NGcXZ2d0t2QjNaemQwYXlsRVRwNDZIeHRzVwpXUkZkak42U0VBOEdoUGtIallSQ1NtbElDUTIxK0NIcGJVREhOdnZzSEQzSVVzbVQ5WkJlTzVHbGl4SnVZRWtMCnc3YVRaV0tKVEFNZjNQaldGdnFtbUF3TFRMejRCVHpxQzdLaXd6eVI1cGlpeXhOaWJEZk40NHdQdU91Ky9ERTcKVm1CWWhKR00yOUJTbmwyQUdNdkhqL2JNK2RGbHplK0d1RG1rZTZocUxiQlBjR1JSQWV4Q1BvYmE2UDEzQW9PagpnaHdzWXJxMVZOcmdrUWsxN2MzUWorYmlmb1ZIM055SDc1S0VyeFlqRlJvTDVmVUF6aEZQcms0aWQrd2toUkxZClFNQ1VQRFR6YVZuZk9rWEdmZkZVNXh6aFJRUE0xWmxmbzJXeDhCU1FuczdQcndKR245aTEzcWk0dktRam1qOFoKbnRZNlFkRUxBZnhaQTJHVjNoeVk4MmZrMlNObEczTUhSVE5Ubkx6aGoxWnBkOTJsNS9Fd0xFL1RKTjhOYVloQQplZzNBMUxOQ1BncThBKzdDSDZLeTR3PT0KLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=\n",
				"    client-key-data: LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0t\n",
			},
		},
	}
}

// pemRule builds the rule for one PEM label; maxBody bounds the armored
// body (the engine's window, as RE2 caps counted repetition at 1000). Its
// negatives are common to every label: truncated bodies, placeholders and
// public keys.
func pemRule(id, desc, label string, maxBody int, pos []Sample) Rule {
	begin, end := "-----BEGIN "+label+"-----", "-----END "+label+"-----"
	return Rule{
		ID:          id,
		Description: desc,
		Category:    PKEY,
		Keywords:    []string{begin},
		Pattern:     regexp.QuoteMeta(begin) + `[\s\S]{40,}?` + regexp.QuoteMeta(end),
		MaxLen:      len(begin) + maxBody + len(end) + 1,
		Validate:    pemBody,
		Positives:   pos,
		Negatives: []string{
			begin + "\n...\n" + end + "\n",
			begin + "\n<paste your private key here, keep the header and footer lines>\n" + end + "\n",
			begin + "\\n${PRIVATE_KEY_BODY_FROM_VAULT_AT_DEPLOY_TIME}\\n" + end + "\n",
			"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEJ65XH+4l7q3i7J0BVONe14FAtG2wxwxt43QhAG/ZPVOq5xUkzuU+RjHHM7QIN3Fi\nEgMeRz81GS8ZZz5vd01RqdQR==\n-----END PUBLIC KEY-----\n",
			"if strings.HasPrefix(s, \"" + begin + "\") { // detect the armor\n",
		},
	}
}

// pemBody accepts armored blocks whose body, once armor lines, header lines
// (Proc-Type: …) and \n escapes are removed, is at least 40 characters of
// base64 and nothing else.
func pemBody(b []byte) bool {
	s := strings.ReplaceAll(strings.ReplaceAll(string(b), `\r`, "\n"), `\n`, "\n")
	n := 0
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "-----") || strings.Contains(line, ": ") {
			continue
		}
		if line[0] == '=' && len(line) <= 5 { // PGP armor checksum
			continue
		}
		for i := 0; i < len(line); i++ {
			c := line[i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
				return false
			}
		}
		n += len(line)
	}
	return n >= 40
}

// base64PEMPrivateKey accepts base64 that decodes to a PEM private key block.
func base64PEMPrivateKey(b []byte) bool {
	dec, err := decodeBase64(b)
	if err != nil {
		return false
	}
	s := string(dec)
	return strings.HasPrefix(s, "-----BEGIN ") && strings.Contains(s, "PRIVATE KEY-----") && pemBody(dec)
}
