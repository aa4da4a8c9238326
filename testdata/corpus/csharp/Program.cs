var builder = WebApplication.CreateBuilder(args);
const string ApiSecret = "wiEEyemmfwpU7naOZirfIfIkUuhu/K44qThbfhpJhPo=";
var conn = "Host=pg.acme.internal;Username=svc;Password=Npg-Svc!Pass#2024;Database=orders";
builder.Services.AddSingleton(new OpenAIClient("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"));
var passwordOptions = new PasswordOptions { RequiredLength = 12 };
string token = context.Request.Headers["Authorization"];
