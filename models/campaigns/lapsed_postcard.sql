{#-
    "We miss you" postcard for European customers whose last order is more than a year old, greeted in
    their own language. Written for a mail house that wants ;-separated cp1252 files with CRLF lines,
    so the labels are the mail house's own. One postcard per household: the runner keeps the member with
    the highest lifetime value (household_order) and records the others.
-#}
with

profiles as (

    select * from {{ ref('int_profiles_qualified') }}

),

lapsed as (

    select
        profile_id,
        {{ greeting('language', 'first_name', 'last_name') }} as {{ adapter.quote('Greeting') }},
        concat_ws(' ', first_name, last_name) as {{ adapter.quote('Name') }},
        normalized_address_line_1 as {{ adapter.quote('Street') }},
        normalized_address_line_2 as {{ adapter.quote('Address 2') }},
        normalized_postal_code as {{ adapter.quote('Postal Code') }},
        normalized_city as {{ adapter.quote('City') }},
        normalized_country_code as {{ adapter.quote('Country') }},
        cast(last_ordered_at as date) as {{ adapter.quote('Last order') }},
        {{ round_to('lifetime_value', 2) }} as {{ adapter.quote('Lifetime value') }}

    from profiles
    where
        is_lapsed_customer
        and country_code in ('FR', 'DE', 'ES', 'PT', 'GB')

)

select * from lapsed
