package rules

// PyPI (and TestPyPI) upload tokens: macaroons whose base64 starts with the
// issuing domain.
func pypi() []Rule {
	return []Rule{
		prefixed("pypi-upload-token", "PyPI or TestPyPI upload token (pypi-AgEIcHlwaS5vcmc…)", TOKEN,
			[]string{"pypi-AgEIcHlwaS5vcmc", "pypi-AgENdGVzdC5weXBpLm9yZw"},
			`[A-Za-z0-9_-]{50,}`, 1230,
			[]Sample{
				textSample("[pypi]\n  username = __token__\n  password = ", "pypi-AgEIcHlwaS5vcmcCJwPv6XeYS-lM6SqeIzJVil45yKbx8zoK6ZoTsbqfhNfb_dvI0Ovgx8wjmmQJvkwUzuu2eBQEN5xJPdnklXeY4mxUDo53JnOXh4o6pRcGtKaaNt99eFIbePG6XuID7fIWqUtfFxoL7hyhlgguQk3AhyVc-Qv0i03BE", "\n"),
				envSample("TWINE_PASSWORD", "pypi-AgENdGVzdC5weXBpLm9yZwIkNlnSK2z96XxmyxPO3ZNkfoKhkrvI9obamOL7ywHi-imKF2lvbYZ-j6MSoeLsEu3AyvuQN9tmwXe4Ya97J4s_XEPJpKCiKy025O7nOReD_77KnvBUvcTM8YhfY0ASQCBTfQYXSLGJALAge1EuxnzywY"),
			},
			[]string{
				"TWINE_PASSWORD=pypi-AgEIcHlwaS5vcmc<rest-of-token>\n",
				"password = pypi-AgEIcHlwaS5vcmcOqwC1dp0DJfY5nC0c0cx\n",
			}),
	}
}
