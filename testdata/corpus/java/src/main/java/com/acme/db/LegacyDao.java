package com.acme.db;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

public class LegacyDao {

    private static final String URL = "jdbc:sqlserver://sql01.corp.local:1433;databaseName=Legacy;encrypt=true;user=legacy_ro;password=Jh6$wQ2!xLp9";
    private static final String REPORT_URL = "jdbc:mysql://reports.corp.local:3306/reports";

    public List<String> customerNames() throws SQLException {
        List<String> names = new ArrayList<>();
        try (Connection c = DriverManager.getConnection(URL);
             PreparedStatement ps = c.prepareStatement("SELECT name FROM customers WHERE active = 1");
             ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
                names.add(rs.getString(1));
            }
        }
        return names;
    }

    public int reportCount() throws SQLException {
        try (Connection c = DriverManager.getConnection(REPORT_URL, "reporter", "Rp!2024-winter-Q4x")) {
            return c.createStatement().executeQuery("SELECT COUNT(*) FROM runs").getInt(1);
        }
    }
}
