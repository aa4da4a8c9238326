package rules

import "strings"

// Database and broker connection strings that carry a password. The whole
// connection string is the secret (category CONN): tokenizing only the
// password would leave the host and user readable, and a model handles one
// opaque token as well as a URL. Templated passwords (${DB_PASS},
// {{ .Values.x }}, <password>, %s) are not secrets.
func connStrings() []Rule {
	return []Rule{
		connURL("postgres-connection-string", "PostgreSQL URL with a password (postgres://, postgresql://, postgresql+driver://)",
			`postgres(?:ql)?(?:\+[a-z0-9]+)?`, []string{"postgres://", "postgresql://", "postgres+", "postgresql+"},
			[]Sample{
				envSample("DATABASE_URL", "postgres://billing:ohOTOoUrqZHgylriSt20@db-01.prod.internal:5432/billing?sslmode=require"),
				pySample("engine_url", "postgresql+psycopg2://app:TyGIM3*TqB4DcFl+@10.0.3.17/app"),
				yamlSample("dsn", "postgresql://readonly:CbytYYuUm2wJKuL6veiXCIIY@pg.acme.io/analytics"),
				// Sentence punctuation after the URL is not part of it.
				textSample("Connect with ", "postgres://svc:Wq8eRt5yUi3o@pg.acme.io:5432/app", ", then migrate.\n"),
				// A quote in the password: only the @ ends it.
				envSample("DATABASE_URL", `postgres://app:p"a\ss-wörd7@db.internal:5432/x`),
			},
			[]string{
				"DATABASE_URL=postgres://app:${DB_PASSWORD}@db:5432/app\n",
				"DATABASE_URL=postgres://user:password@localhost:5432/mydb\n",
				"url: postgresql://localhost/app\n",
				"url = f\"postgresql://{user}:{password}@{host}/db\"\n",
			}),
		connURL("mysql-connection-string", "MySQL or MariaDB URL with a password", `mysql(?:x|\+[a-z0-9]+)?|mariadb`, []string{"mysql://", "mysqlx://", "mysql+", "mariadb://"},
			[]Sample{
				envSample("DATABASE_URL", "mysql://root:wJuxXEPMhyx3JH5whe@mysql.acme.io:3306/shop"),
				textSample("engine = create_engine(\"", "mysql+pymysql://etl:VcDMRYp!WtWHQ+7BSHGq@10.20.0.5:3306/warehouse", "\")\n"),
			},
			[]string{
				"DATABASE_URL=mysql://root:<password>@localhost/shop\n",
				"DATABASE_URL=mysql://root@localhost/shop\n",
			}),
		connURL("mongodb-connection-string", "MongoDB URL with a password (mongodb://, mongodb+srv://)", `mongodb(?:\+srv)?`, []string{"mongodb://", "mongodb+srv://"},
			[]Sample{
				envSample("MONGODB_URI", "mongodb+srv://api:ewYsSFiSXY0MwEGq@cluster0.ab1cd.mongodb.net/prod?retryWrites=true&w=majority"),
				jsSample("uri", "mongodb://admin:uDDbOtRmCuLkdpvoigEQjE@mongo-0.mongo:27017,mongo-1.mongo:27017/app?replicaSet=rs0"),
			},
			[]string{
				"MONGODB_URI=mongodb+srv://<username>:<password>@cluster0.mongodb.net/\n",
				"MONGODB_URI=mongodb://localhost:27017/app\n",
			}),
		connURL("redis-connection-string", "Redis URL with a password (redis://, rediss://)", `rediss?`, []string{"redis://", "rediss://"},
			[]Sample{
				envSample("REDIS_URL", "redis://:qvZ4VRbxHNkckeOdN6bE8Z4ytxgSeGRe@redis.acme.io:6379/0"),
				goShortSample("addr", "rediss://default:ykMqiCTmaVXIvzHo2Rwg91Gp@cache-prod.upstash.io:6380"),
			},
			[]string{
				"REDIS_URL=redis://localhost:6379/0\n",
				"REDIS_URL=redis://:changeme@localhost:6379\n",
			}),
		connURL("amqp-connection-string", "AMQP (RabbitMQ) URL with a password", `amqps?`, []string{"amqp://", "amqps://"},
			[]Sample{
				envSample("CELERY_BROKER_URL", "amqp://worker:RgqTq4wzy8FAa0lLYis0@rabbitmq.prod.internal:5672/jobs"),
				yamlSample("broker_url", "amqps://svc-orders:A71n9M9Tz401mxEWqcsveAZy@b-1234.mq.eu-west-1.amazonaws.com:5671"),
			},
			[]string{
				"CELERY_BROKER_URL=amqp://guest:guest@localhost:5672//\n",
				"CELERY_BROKER_URL=amqp://user:%s@host/\n",
			}),
		{
			ID:          "sqlserver-connection-string",
			Description: "SQL Server / ADO.NET / ODBC connection string with Password= or Pwd=",
			Category:    CONN,
			Keywords:    []string{"server=", "data source=", "address=", "addr="},
			Pattern:     `(?i)((?:Server|Data Source|Address|Addr)\s*=\s*[^;"'\x60\n]+;(?:[^;"'\x60\n]*;)*?\s*(?:Password|Pwd)\s*=\s*[^;"'\x60\n]+(?:;[^;"'\x60\n]*)*)`,
			SecretGroup: 1,
			MaxLen:      800,
			Validate:    KeyValuePassword,
			Positives: []Sample{
				jsonSample("DefaultConnection", "Server=tcp:acme-sql.database.windows.net,1433;Initial Catalog=orders;Persist Security Info=False;User ID=orders_app;Password=ZmYska7X4elUVqYzF8Fq;MultipleActiveResultSets=False;Encrypt=True;"),
				textSample("var cs = @\"", "Data Source=SQL01\\PROD;Initial Catalog=Payroll;User Id=payroll;Pwd=Dkd4bSuxSD6z8X00;", "\";\n"),
			},
			Negatives: []string{
				"\"DefaultConnection\": \"Server=(localdb)\\\\mssqllocaldb;Database=app;Trusted_Connection=True;\"\n",
				"Server=sql01;Database=app;User Id=sa;Password=<YourStrong@Passw0rd>;\n",
				"Server=sql01;Database=app;User Id=sa;Password=${SA_PASSWORD};\n",
			},
		},
		{
			ID:          "jdbc-connection-string",
			Description: "JDBC URL with a password= parameter",
			Category:    CONN,
			Keywords:    []string{"jdbc:"},
			Pattern:     `(?i)(jdbc:[a-z0-9]+:[^\s"'\x60<>]*?[?;&](?:password|pwd)=[^&;\s"'\x60<>]+[^\s"'\x60<>]*)`,
			SecretGroup: 1,
			MaxLen:      600,
			Validate:    KeyValuePassword,
			Positives: []Sample{
				textSample("spring.datasource.url=", "jdbc:postgresql://pg.acme.io:5432/orders?user=orders&password=JrMX89uMMSS7zAeZPG&ssl=true", "\n"),
				xmlSample("url", "jdbc:sqlserver://sql01.corp:1433;databaseName=hr;user=hr_app;password=2lcoVXwohv8SACqG;encrypt=true"),
			},
			Negatives: []string{
				"spring.datasource.url=jdbc:postgresql://localhost:5432/orders\n",
				"url=jdbc:mysql://db/app?user=app&password=${DB_PASSWORD}\n",
			},
		},
		{
			ID:          "mysql-go-dsn",
			Description: "Go MySQL driver DSN with a password (user:password@tcp(host)/db)",
			Category:    CONN,
			Keywords:    []string{"@tcp(", "@unix("},
			Before:      200,
			Pattern:     `(?:^|[^A-Za-z0-9_.+-])([A-Za-z0-9_.-]{1,64}:[^\s@"'\x60]{1,128}@(?:tcp|unix)\([^)\s"'\x60]{1,200}\)/[^\s"'\x60]*)`,
			SecretGroup: 1,
			MaxLen:      300,
			Validate:    goDSNPassword,
			Positives: []Sample{
				textSample("dsn := flag.String(\"dsn\", \"", "migrator:3v6f9nFdgUK6!Cg0@tcp(mysql-primary.db.svc:3306)/inventory?parseTime=true", "\", \"MySQL DSN\")\n"),
				envSample("MYSQL_DSN", "app:2tbDM5z7xK5ClXDTLMld@tcp(10.0.4.12:3306)/shop"),
			},
			Negatives: []string{
				"dsn := \"root:${MYSQL_ROOT_PASSWORD}@tcp(db:3306)/app\"\n",
				"dsn := fmt.Sprintf(\"%s:%s@tcp(%s)/%s\", user, pass, host, db)\n",
				"dsn := \"app@tcp(db:3306)/app\"\n",
			},
		},
	}
}

// connURL builds the rule for a database or broker URL scheme: the whole URL
// is the secret, and its password must not be a placeholder.
func connURL(id, desc, scheme string, keywords []string, pos []Sample, neg []string) Rule {
	return Rule{
		ID:          id,
		Description: desc,
		Category:    CONN,
		Keywords:    keywords,
		Pattern:     `(?i)(?:^|[^A-Za-z0-9+.-])((?:` + scheme + `)://[^\s:@/?#"'\x60<>]*:[^\s@/?#\x60<>]+@[^\s"'\x60<>(){}\[\];]*[^\s"'\x60<>(){}\[\];,.])`,
		SecretGroup: 1,
		MaxLen:      600,
		Validate:    URLPassword,
		Positives:   pos,
		Negatives:   neg,
	}
}

// goDSNPassword checks the password of a Go MySQL DSN
// (user:password@tcp(host)/db): present and not a placeholder.
func goDSNPassword(b []byte) bool {
	s := string(b)
	at := strings.LastIndex(s, "@tcp(")
	if at < 0 {
		at = strings.LastIndex(s, "@unix(")
	}
	colon := strings.IndexByte(s, ':')
	if at < 0 || colon < 0 || colon >= at-1 {
		return false
	}
	return NotPlaceholder([]byte(s[colon+1 : at]))
}
